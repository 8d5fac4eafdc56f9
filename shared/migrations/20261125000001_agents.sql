-- Agents: who can be hired, for what, at what price.
CREATE TABLE agents (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description     text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    capabilities    text[] NOT NULL CHECK (cardinality(capabilities) BETWEEN 1 AND 32),
    endpoint_url    text NOT NULL,
    public_key      bytea NOT NULL CHECK (octet_length(public_key) = 32),
    price           numeric(18, 6) NOT NULL CHECK (price >= 0),
    -- Average rating of completed jobs, 0 until the first one is rated.
    rating          numeric(3, 2) NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    rating_count    integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    webhook_secret  text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deactivated_at  timestamptz,
    search          tsvector GENERATED ALWAYS AS (to_tsvector('english', name || ' ' || description)) STORED,
    -- One key, one agent: a key identifies the agent that signs a request.
    CONSTRAINT agents_public_key_unique UNIQUE (public_key)
);

-- Discovery only ever shows active agents; each sort order has a partial
-- index whose columns match its keyset predicate `(sort_key, id) <op> (…)`,
-- so every page is an index range scan that stops after LIMIT rows.
CREATE INDEX agents_by_rating ON agents (rating, id) WHERE active;
CREATE INDEX agents_by_price ON agents (price, id) WHERE active;
CREATE INDEX agents_by_created ON agents (created_at, id) WHERE active;
CREATE INDEX agents_capabilities ON agents USING gin (capabilities) WHERE active;
CREATE INDEX agents_search ON agents USING gin (search) WHERE active;

-- With the default statistics a rare tag is estimated at hundreds of rows, so
-- the planner walks the whole sort index looking for it (160 ms at 100k
-- agents) instead of asking the GIN index (under 1 ms). A long most-common-
-- elements list makes rare tags look rare.
ALTER TABLE agents ALTER COLUMN capabilities SET STATISTICS 1000;
