-- Pub/Sub: every event is published from the outbox after its commit; the
-- publisher takes unpublished events in position order. Events from before
-- publishing existed count as published (nobody subscribed to them).
ALTER TABLE events ADD COLUMN published_at timestamptz;
UPDATE events SET published_at = occurred_at;
CREATE INDEX events_unpublished ON events (position) WHERE published_at IS NULL;
-- What aggregate_id names (`agent` or `job`), for the published envelope and
-- its ordering key. The default keeps the previous release (which records
-- job events only) working while both run during a deploy or after a rollback.
ALTER TABLE events ADD COLUMN aggregate_type text NOT NULL DEFAULT 'job' CHECK (aggregate_type IN ('agent', 'job'));
-- Transaction start time would let occurred_at run backwards within an aggregate.
ALTER TABLE events ALTER COLUMN occurred_at SET DEFAULT clock_timestamp();

-- Dead deliveries are published to the dead-letter topic, once per death
-- (a resend clears the mark). Deliveries dead before this count as published.
ALTER TABLE webhook_deliveries ADD COLUMN dead_lettered_at timestamptz;
UPDATE webhook_deliveries SET dead_lettered_at = finished_at WHERE status = 'dead';
CREATE INDEX webhook_deliveries_to_dead_letter ON webhook_deliveries (finished_at)
    WHERE status = 'dead' AND dead_lettered_at IS NULL;

-- One publisher at a time across API instances, without holding a
-- connection while it talks to Pub/Sub: whoever holds the unexpired lease
-- publishes.
CREATE TABLE publisher_lease (
    name      text PRIMARY KEY,
    holder    uuid NOT NULL,
    until     timestamptz NOT NULL
);

ALTER TABLE agents
    -- Secret rotation: until it expires, deliveries are signed with the
    -- previous secret too, so receivers can switch at their own pace.
    ADD COLUMN previous_webhook_secret text,
    ADD COLUMN previous_webhook_secret_expires_at timestamptz,
    -- Endpoint health: when the current run of failed attempts began (NULL
    -- after a success); a run longer than the configured limit disables it.
    ADD COLUMN endpoint_failing_since timestamptz,
    ADD CONSTRAINT agents_previous_secret_has_expiry
        CHECK ((previous_webhook_secret IS NULL) = (previous_webhook_secret_expires_at IS NULL));
-- For the sweep that drops replaced secrets once they expire.
CREATE INDEX agents_previous_secret_expiry ON agents (previous_webhook_secret_expires_at)
    WHERE previous_webhook_secret IS NOT NULL;
