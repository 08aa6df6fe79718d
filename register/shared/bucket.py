"""The token bucket's arithmetic, for the stores that keep their buckets in Python (memory, file)."""

from __future__ import annotations


def take_token(held: tuple[float, float] | None, *, now: float, rate: float, burst: int) -> tuple[tuple[float, float], float]:
    """The bucket after one take at `now`, and the wait: 0.0 if a token was taken, else the seconds until
    one will be. `held` is (tokens, when counted), None for a full bucket."""
    tokens, then = held if held is not None else (float(burst), now)
    tokens = min(float(burst), tokens + max(0.0, now - then) * rate)
    if tokens >= 1.0:
        return (tokens - 1.0, now), 0.0
    return (tokens, now), (1.0 - tokens) / rate

