"""Attachments: content-addressed blobs, types told from bytes, media facts, the rules."""
