"""The one place in ``sfu/`` that imports aiortc or aioice (both pinned in pyproject.toml),
and where the versions of libraries whose internals ``sfu/`` relies on are pinned.

The media path does not need them: ``sfu.ice`` has its own STUN codec (a binding request
is all an ICE-lite agent parses, and a dozen lines of struct beat a general attribute table
on every check), ``sfu.dtls`` its own certificate (aiortc's has a random CN) and DTLS over
pyOpenSSL, ``sfu.srtp`` calls pylibsrtp's cffi binding directly (an implementation
detail of pylibsrtp, hence its pin here). What is left is aioice's STUN codec as an
independent reference, for tests and debugging tools that want to build or read the
messages ``sfu.ice`` answers, and a check that the installed versions are the pinned ones,
since anything used from here may be an implementation detail of those versions.
"""

from __future__ import annotations

from importlib.metadata import version

from aioice.stun import Class as StunClass
from aioice.stun import Message as StunMessage
from aioice.stun import Method as StunMethod
from aioice.stun import parse_message as parse_stun

__all__ = ["PINNED", "StunClass", "StunMessage", "StunMethod", "check_pins", "parse_stun"]

PINNED = {"aiortc": "1.16.0", "aioice": "0.13.0", "pylibsrtp": "1.0.0"}


def check_pins() -> None:
    """Raise ``RuntimeError`` if an installed library is not the pinned version."""
    for name, pinned in PINNED.items():
        installed = version(name)
        if installed != pinned:
            raise RuntimeError(f"sfu.adapter is written for {name}=={pinned}, not {installed}")
