"""The demo (``parta serve --demo``): a demo school pushed by a demo journal through the
Journal API, a few people ready to sign in, and the demo journal's pages under
``/demo-journal/`` that show the embedding end to end."""
