"""One fixed-window request counter for the pages anyone can reach without signing in
(patient links, calendar feeds)."""

from __future__ import annotations

import time

from django.core.cache import cache


def rate_limited(key: str, *, limit: int, window: int) -> bool:
    """Count one request under ``key``; True once more than ``limit`` fell in this window."""
    bucket = f"rate:{key}:{int(time.time() // window)}"
    if cache.add(bucket, 1, timeout=window * 2):
        return False
    try:
        count = cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.set(bucket, 1, timeout=window * 2)
        count = 1
    return count > limit
