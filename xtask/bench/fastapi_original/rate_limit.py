"""Token buckets per caller and class in Redis, one Lua script per request:
the seeds' rate limits, as the Rust API keeps them (the same script). When
Redis is unreachable reads go through unlimited."""

from pathlib import Path

from fastapi import Depends, HTTPException, Request
from redis.exceptions import RedisError

# The API's own script, read from its source. KEYS[1]: the bucket;
# ARGV[1]: capacity, ARGV[2]: refill per minute. Returns {allowed (0/1),
# tokens left, ms until the next token}.
TAKE_TOKEN_LUA = (Path(__file__).resolve().parents[3] / "api/src/http/token_bucket.lua").read_text()


def limited(kind: str):
    """A dependency taking one token of the caller's `kind` bucket (`discovery` or `read`)."""

    async def take_token(request: Request) -> None:
        state = request.app.state
        settings = state.settings
        capacity = getattr(settings, f"rate_limit_{kind}_capacity")
        refill = getattr(settings, f"rate_limit_{kind}_refill_per_min")
        caller = request.client.host if request.client else "unknown"
        key = f"{settings.redis_key_prefix}ratelimit:{kind}:{caller}"
        try:
            allowed, _, wait_ms = await state.take_token(keys=[key], args=[capacity, refill])
        except RedisError:
            return
        if not allowed:
            retry_after = max(1, -(-int(wait_ms) // 1000))
            raise HTTPException(429, "rate limited", headers={"Retry-After": str(retry_after)})

    return Depends(take_token)
