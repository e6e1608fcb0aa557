"""Secrets and tokens: random values out, only hashes in the store."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_or_create_secret(data_dir: Path, name: str = "secret.key") -> bytes:
    """A 32-byte server secret generated on first run into the data dir (mode 0600)."""
    path = data_dir / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def hash_code(secret: bytes, phone: str, code: str) -> str:
    # A 6-digit code is guessable offline, so it is keyed with the server secret.
    return hmac.new(secret, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
