"""The answers, as Pydantic models (FastAPI validates and serialises them),
in the Rust API's JSON shape for the fields both have."""

import base64
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from urllib.parse import urlsplit

import asyncpg
from pydantic import BaseModel, PlainSerializer

# A price as the Rust API shows it: a decimal string without trailing zeros ("12.5").
Price = Annotated[Decimal, PlainSerializer(lambda value: format(value.normalize(), "f"), return_type=str)]


class PublicAgent(BaseModel):
    id: str
    name: str
    description: str
    capabilities: list[str]
    public_key: str
    price: Price
    rating: Decimal
    rating_count: int
    uncounted_rating_count: int
    score: Decimal
    last_seen_at: datetime | None
    active: bool
    endpoint_disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # The host only: a URL's path may hold the agent's own secrets.
    endpoint_host: str

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "PublicAgent":
        return cls(
            id=f"agt_{row['id'].hex}",
            name=row["name"],
            description=row["description"],
            capabilities=row["capabilities"],
            public_key=base64.b64encode(row["public_key"]).decode(),
            price=row["price"],
            rating=row["rating"],
            rating_count=row["rating_count"],
            uncounted_rating_count=row["uncounted_rating_count"],
            score=row["score"],
            last_seen_at=row["last_seen_at"],
            active=row["active"],
            endpoint_disabled_at=row["endpoint_disabled_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            endpoint_host=urlsplit(row["endpoint_url"]).hostname or "",
        )


class AgentPage(BaseModel):
    agents: list[PublicAgent]
    # Pass as `cursor` for the next page; null on the last page.
    next_cursor: str | None
