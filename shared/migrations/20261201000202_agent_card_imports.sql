-- Agents registered (or updated) from an A2A Agent Card URL: where the card
-- is, the ETag it was last fetched with (sent as If-None-Match on a
-- refresh), and what of it the registry's own card of the agent serves back:
-- the interfaces it declared and its provider. Bounded: at most 8 interfaces
-- (the API refuses more), from a card of at most 64 KiB.
-- Backward compatible: a new table; agents registered without a card have no row.
CREATE TABLE agent_card_imports (
    agent_id    uuid PRIMARY KEY REFERENCES agents (id),
    url         text NOT NULL CHECK (char_length(url) <= 2048),
    etag        text CHECK (char_length(etag) <= 256),
    interfaces  jsonb NOT NULL CHECK (jsonb_typeof(interfaces) = 'array' AND jsonb_array_length(interfaces) <= 8),
    provider    jsonb CHECK (jsonb_typeof(provider) = 'object'),
    fetched_at  timestamptz NOT NULL DEFAULT now()
);
