-- The worker owns the retry schedule (WEBHOOK_RETRY_SCHEDULE): after a failed
-- attempt it records when the next one runs and creates that attempt's Cloud
-- Tasks task itself. Written so the previous release keeps working during a
-- deploy or after a rollback (new columns are nullable or defaulted).
ALTER TABLE webhook_deliveries
    -- When the current task is scheduled to run: the first attempt's task
    -- (by the relay), the next attempt's (after a failure) or a deferral's
    -- (an endpoint paced or busy). The sweep looks for rows long overdue.
    ADD COLUMN next_attempt_at timestamptz,
    -- The Cloud Tasks name (short) of the row's current task, so the sweep
    -- can ask Cloud Tasks whether it still exists.
    ADD COLUMN task_name text,
    -- Who holds the lease: only the holder releases it or records its attempt,
    -- and a later push may take over an expired one.
    ADD COLUMN lease_token uuid,
    -- Resends by the recipient: at most one a minute and a bounded number in all.
    ADD COLUMN resends integer NOT NULL DEFAULT 0,
    ADD COLUMN resent_at timestamptz;

-- A dispatched row always says when it was dispatched.
UPDATE webhook_deliveries SET dispatched_at = created_at WHERE status = 'dispatched' AND dispatched_at IS NULL;
UPDATE webhook_deliveries SET next_attempt_at = dispatched_at WHERE status = 'dispatched';
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_dispatched_at
    CHECK (status <> 'dispatched' OR dispatched_at IS NOT NULL);

-- The sweep and the backlog metric look at overdue dispatched rows.
DROP INDEX webhook_deliveries_dispatched;
CREATE INDEX webhook_deliveries_dispatched ON webhook_deliveries (next_attempt_at) WHERE status = 'dispatched';

-- Listings page newest first with keyset cursors (created_at, id), per agent
-- and per client; recover finds a recipient's dead deliveries by time of death.
DROP INDEX webhook_deliveries_by_agent;
CREATE INDEX webhook_deliveries_by_agent ON webhook_deliveries (agent_id, created_at, id) WHERE agent_id IS NOT NULL;
CREATE INDEX webhook_deliveries_by_client ON webhook_deliveries (client_id, created_at, id) WHERE client_id IS NOT NULL;
CREATE INDEX webhook_deliveries_dead_by_agent ON webhook_deliveries (agent_id, finished_at)
    WHERE status = 'dead' AND agent_id IS NOT NULL;
CREATE INDEX webhook_deliveries_dead_by_client ON webhook_deliveries (client_id, finished_at)
    WHERE status = 'dead' AND client_id IS NOT NULL;

-- Which round (generation) an attempt belonged to: a resend starts its
-- attempts from 1 again.
ALTER TABLE delivery_attempts ADD COLUMN generation integer NOT NULL DEFAULT 0;
-- Attempts older than DELIVERY_ATTEMPTS_RETENTION_DAYS are pruned.
CREATE INDEX delivery_attempts_by_start ON delivery_attempts (started_at);

-- Pacing per target URL, for agent endpoints and client callbacks alike:
-- while a run of failures lasts, or a receiver asked to wait (429/503,
-- Retry-After), no delivery to the URL is sent before `retry_at`; one
-- delivery at a time probes it then. A success deletes the row, so the
-- table holds only URLs that are failing or throttled.
CREATE TABLE endpoint_health (
    url            text PRIMARY KEY,
    -- When the current run of failed attempts began.
    failing_since  timestamptz NOT NULL,
    -- Nothing is sent to the URL before this (a probe in flight holds it too).
    retry_at       timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- For dropping rows of URLs nobody has sent to for a long time.
CREATE INDEX endpoint_health_by_update ON endpoint_health (updated_at);
