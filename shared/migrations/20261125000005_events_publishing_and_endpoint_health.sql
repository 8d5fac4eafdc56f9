-- Pub/Sub: every event is published from the outbox after its commit; the
-- publisher takes unpublished events in position order.
ALTER TABLE events ADD COLUMN published_at timestamptz;
-- What aggregate_id names (`agent` or `job`), for the published envelope and
-- its ordering key. Every event before this migration was about a job.
ALTER TABLE events ADD COLUMN aggregate_type text NOT NULL DEFAULT 'job' CHECK (aggregate_type IN ('agent', 'job'));
ALTER TABLE events ALTER COLUMN aggregate_type DROP DEFAULT;
CREATE INDEX events_unpublished ON events (position) WHERE published_at IS NULL;

-- Dead deliveries are published to the dead-letter topic, once per death
-- (a resend clears the mark).
ALTER TABLE webhook_deliveries ADD COLUMN dead_lettered_at timestamptz;
CREATE INDEX webhook_deliveries_to_dead_letter ON webhook_deliveries (finished_at)
    WHERE status = 'dead' AND dead_lettered_at IS NULL;

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
