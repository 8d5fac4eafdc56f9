"""The FastAPI service agent-registry replaces, rebuilt from its documented
design (../shared/seeds: FastAPI, asyncpg, Redis for rate limits, settings
by pydantic-settings, uvicorn) for `cargo xtask bench --only original`: the
public reads the bench drives, `GET /v1/agents` (discovery) and
`GET /v1/agents/{id}`, on the same database as the Rust API.

    uvicorn main:app --workers 2 --no-access-log --log-level warning
"""

import re
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Literal

import asyncpg
import redis.asyncio as redis
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

import queries
from models import AgentPage, PublicAgent
from rate_limit import TAKE_TOKEN_LUA, limited
from settings import Settings

MAX_SEARCH_TAGS = 32
TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
AGENT_ID = re.compile(r"agt_([0-9a-f]{32})")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = Settings()
    app.state.settings = settings
    app.state.db = await asyncpg.create_pool(settings.asyncpg_dsn)
    app.state.redis = redis.Redis.from_url(settings.redis_url)
    app.state.take_token = app.state.redis.register_script(TAKE_TOKEN_LUA)
    app.state.tag_frequencies = queries.TagFrequencies()
    yield
    await app.state.redis.aclose()
    await app.state.db.close()


app = FastAPI(title="agent-registry (FastAPI original)", lifespan=lifespan)


def parse_tags(capabilities: str | None) -> list[str]:
    if capabilities is None:
        return []
    entries = capabilities.split(",")
    if len(entries) > MAX_SEARCH_TAGS:
        raise HTTPException(422, f"capabilities: at most {MAX_SEARCH_TAGS} comma-separated tags")
    tags = [entry.strip().lower() for entry in entries if entry.strip()]
    for tag in tags:
        if not TAG.fullmatch(tag):
            raise HTTPException(422, f"capabilities: {tag!r} is not a capability tag")
    return tags


@app.get("/v1/agents", response_model=AgentPage, dependencies=[limited("discovery")])
async def discover_agents(
    request: Request,
    capabilities: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    max_price: Annotated[Decimal | None, Query(ge=0, le=1_000_000, decimal_places=6)] = None,
    min_rating: Annotated[Decimal | None, Query(ge=0, le=5, decimal_places=2)] = None,
    seen_within_seconds: Annotated[int | None, Query(ge=60, le=2_592_000)] = None,
    sort: Literal["rating", "price", "newest"] = "rating",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
) -> AgentPage:
    tags = parse_tags(capabilities)
    text = q.strip() if q else None
    if text and "\0" in text:
        raise HTTPException(422, "q: must not contain NUL characters")
    try:
        after = queries.decode_cursor(cursor, sort) if cursor else queries.FIRST_POSITIONS[sort]
    except queries.InvalidCursor as error:
        raise HTTPException(422, f"cursor: {error}") from error
    state = request.app.state
    walk = await state.tag_frequencies.rarest(state.db, tags) if tags else None
    seen_since = (
        datetime.now(timezone.utc) - timedelta(seconds=seen_within_seconds) if seen_within_seconds else None
    )
    rows = await queries.discover(
        state.db,
        tags=tags,
        walk=walk,
        text=text or None,
        max_price=max_price,
        min_rating=min_rating,
        seen_since=seen_since,
        sort=sort,
        after=after,
        fetch=limit + 1,
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = queries.encode_cursor(sort, rows[-1]) if has_more and rows else None
    return AgentPage(agents=[PublicAgent.from_row(row) for row in rows], next_cursor=next_cursor)


@app.get("/v1/agents/{agent_id}", response_model=PublicAgent, dependencies=[limited("read")])
async def get_agent(request: Request, agent_id: str) -> PublicAgent:
    matched = AGENT_ID.fullmatch(agent_id)
    if not matched:
        raise HTTPException(422, "id: must be agt_ followed by 32 hexadecimal digits")
    row = await queries.find_agent(request.app.state.db, uuid.UUID(hex=matched[1]))
    if row is None:
        raise HTTPException(404, f"no agent {agent_id}")
    return PublicAgent.from_row(row)


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz(request: Request):
    state = request.app.state
    try:
        await state.db.fetchval("SELECT 1")
        await state.redis.ping()
    except (OSError, asyncpg.PostgresError, redis.RedisError) as error:
        return JSONResponse({"status": "unavailable", "error": type(error).__name__}, status_code=503)
    return {"status": "ready"}
