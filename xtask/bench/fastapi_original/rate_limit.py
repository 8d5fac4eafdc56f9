"""Token buckets per caller and class in Redis, one Lua script per request:
the seeds' rate limits, as the Rust API keeps them (the same script). When
Redis is unreachable reads go through unlimited."""

from fastapi import Depends, HTTPException, Request
from redis.exceptions import RedisError

# KEYS[1]: the bucket; ARGV[1]: capacity, ARGV[2]: refill per minute.
# Returns {allowed (0/1), tokens left, ms until the next token}.
TAKE_TOKEN_LUA = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 60000
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / per_ms) + 1000)
return {allowed, math.floor(tokens), wait}
"""


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
