"""Discovery's and the agent read's SQL: the Rust API's own statements
(api/src/features/discovery/store.rs, api/src/resources/agent.rs), so the
side-by-side bench compares the services, not their queries. Connections
and plans are asyncpg's and Postgres's defaults (its statement cache, which
prepares each statement once per connection)."""

import base64
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg

COLUMNS = (
    "a.id, a.name, a.description, a.capabilities, a.endpoint_url, a.public_key, a.price, a.rating, "
    "a.rating_count, a.uncounted_rating_count, a.score, a.last_seen_at, a.active, a.endpoint_disabled_at, "
    "a.created_at, a.updated_at"
)

# Above any price numeric(18, 6) holds: "no upper bound".
NO_PRICE_CAP = Decimal(10**12)

# Per sort: the tag walk (over one tag's rows of agent_tags, in the sort's
# order) and the walk without tags (the agents table's own sort indexes).
TAG_WALKS = {
    "rating": f"""SELECT {COLUMNS}
        FROM agent_tags t JOIN agents a ON a.id = t.agent_id
        WHERE t.tag = $1
          AND ($5::text IS NULL OR t.search @@ (SELECT websearch_to_tsquery('english', $5)))
          AND t.capabilities @> $2 AND t.price <= $3 AND t.rating >= $4
          AND ($9::timestamptz IS NULL OR a.last_seen_at >= $9)
          AND (t.score, t.agent_id) < ($6, $7)
        ORDER BY t.score DESC, t.agent_id DESC LIMIT $8""",
    "price": f"""SELECT {COLUMNS}
        FROM agent_tags t JOIN agents a ON a.id = t.agent_id
        WHERE t.tag = $1 AND t.capabilities @> $2 AND t.price <= $3 AND t.rating >= $4
          AND ($5::text IS NULL OR a.search @@ (SELECT websearch_to_tsquery('english', $5)))
          AND ($9::timestamptz IS NULL OR a.last_seen_at >= $9)
          AND (t.price, t.agent_id) > ($6, $7)
        ORDER BY t.price, t.agent_id LIMIT $8""",
    "newest": f"""SELECT {COLUMNS}
        FROM agent_tags t JOIN agents a ON a.id = t.agent_id
        WHERE t.tag = $1 AND t.capabilities @> $2 AND t.price <= $3 AND t.rating >= $4
          AND ($5::text IS NULL OR a.search @@ (SELECT websearch_to_tsquery('english', $5)))
          AND ($9::timestamptz IS NULL OR a.last_seen_at >= $9)
          AND (t.created_at, t.agent_id) < ($6, $7)
        ORDER BY t.created_at DESC, t.agent_id DESC LIMIT $8""",
}

UNTAGGED_FILTERS = """FROM agents a
    WHERE a.active AND ($1::text IS NULL OR a.search @@ websearch_to_tsquery('english', $1))
      AND ($2::numeric IS NULL OR a.price <= $2) AND ($3::numeric IS NULL OR a.rating >= $3)
      AND ($7::timestamptz IS NULL OR a.last_seen_at >= $7)"""

UNTAGGED_WALKS = {
    "rating": f"SELECT {COLUMNS} {UNTAGGED_FILTERS} AND (a.score, a.id) < ($4, $5) ORDER BY a.score DESC, a.id DESC LIMIT $6",
    "price": f"SELECT {COLUMNS} {UNTAGGED_FILTERS} AND (a.price, a.id) > ($4, $5) ORDER BY a.price, a.id LIMIT $6",
    "newest": f"SELECT {COLUMNS} {UNTAGGED_FILTERS} AND (a.created_at, a.id) < ($4, $5) ORDER BY a.created_at DESC, a.id DESC LIMIT $6",
}

FIND_AGENT = f"SELECT {COLUMNS} FROM agents a WHERE a.id = $1"

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

# Where each sort's first page starts: before every row.
FIRST_POSITIONS = {
    "rating": (Decimal("79228162514264337593543950335"), uuid.UUID(int=2**128 - 1)),
    "price": (Decimal(-1), uuid.UUID(int=0)),
    "newest": (datetime(9999, 12, 31, tzinfo=timezone.utc), uuid.UUID(int=2**128 - 1)),
}

SORT_KEYS = {"rating": "score", "price": "price", "newest": "created_at"}


class InvalidCursor(ValueError):
    pass


def encode_cursor(sort: str, row: asyncpg.Record) -> str:
    """The Rust API's cursor: `sort=<sort>:<key>:<id>`, base64url without padding."""
    key = row[SORT_KEYS[sort]]
    text = str((key - EPOCH) // MICROSECOND) if sort == "newest" else str(key)
    raw = f"sort={sort}:{text}:{row['id'].hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")



def decode_cursor(cursor: str, sort: str) -> tuple:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, key, agent = raw.split(":", 2)
        if kind != f"sort={sort}":
            raise InvalidCursor(f"was issued for {kind}; repeat the query it came from")
        position = EPOCH + int(key) * MICROSECOND if sort == "newest" else Decimal(key)
        return position, uuid.UUID(hex=agent)
    except InvalidCursor:
        raise
    except Exception as error:
        raise InvalidCursor("is not a cursor this API issued") from error


class TagFrequencies:
    """Which tag of a multi-tag search to walk: the rarest, by Postgres's
    statistics on agent_tags.tag, read at most once a minute (as the Rust API)."""

    REFRESH_SECONDS = 60.0

    def __init__(self) -> None:
        self._frequencies: dict[str, float] = {}
        self._loaded_at = float("-inf")

    async def rarest(self, pool: asyncpg.Pool, tags: list[str]) -> str:
        if len(tags) == 1:
            return tags[0]
        if time.monotonic() - self._loaded_at > self.REFRESH_SECONDS:
            try:
                row = await pool.fetchrow(
                    "SELECT most_common_vals::text::text[] AS tags, most_common_freqs AS frequencies "
                    "FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'agent_tags' AND attname = 'tag'"
                )
            except asyncpg.PostgresError:
                return tags[0]
            self._frequencies = dict(zip(row["tags"], row["frequencies"])) if row else {}
            self._loaded_at = time.monotonic()
        return min(tags, key=lambda tag: self._frequencies.get(tag, 0.0))


async def discover(
    pool: asyncpg.Pool,
    *,
    tags: list[str],
    walk: str | None,
    text: str | None,
    max_price: Decimal | None,
    min_rating: Decimal | None,
    seen_since: datetime | None,
    sort: str,
    after: tuple,
    fetch: int,
) -> list[asyncpg.Record]:
    if walk is None:
        return await pool.fetch(UNTAGGED_WALKS[sort], text, max_price, min_rating, *after, fetch, seen_since)
    return await pool.fetch(
        TAG_WALKS[sort],
        walk,
        tags,
        NO_PRICE_CAP if max_price is None else max_price,
        Decimal(0) if min_rating is None else min_rating,
        text,
        *after,
        fetch,
        seen_since,
    )


async def find_agent(pool: asyncpg.Pool, agent: uuid.UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(FIND_AGENT, agent)
