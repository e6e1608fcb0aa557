"""Fixtures of the domain tests."""

from tests.domain.world import world

__all__ = ["world"]
