"""Bearer tokens for links that need no account (patient links, calendar feeds).

The token is 256 random bits, shown once; only its SHA-256 is stored, so a copy of the
database opens nothing. A plain hash (no salt, no slow KDF) is enough because the input
is already a full-entropy secret, and it keeps the lookup an indexed equality."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters; anything much longer is not one of ours, and
# hashing it would be work done for an attacker.
TOKEN_MAX_LENGTH = 100


def secret_token_new() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def secret_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def secret_token_plausible(token: str) -> bool:
    return bool(token) and len(token) <= TOKEN_MAX_LENGTH
