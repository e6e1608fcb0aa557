"""Parta: school communication server."""
