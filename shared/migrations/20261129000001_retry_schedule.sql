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
    ADD COLUMN resent_at timestamptz,
    -- Times the current attempt was put off because its host's send slots
    -- were all taken: each wait doubles (to a minute), so a burst to one
    -- slow host does not keep the queue busy with pushes that wait again.
    ADD COLUMN deferrals integer NOT NULL DEFAULT 0;

-- A dispatched row always says when it was dispatched.
UPDATE webhook_deliveries SET dispatched_at = created_at WHERE status = 'dispatched' AND dispatched_at IS NULL;
UPDATE webhook_deliveries SET next_attempt_at = dispatched_at WHERE status = 'dispatched';
-- NOT VALID, then VALIDATE: the check of existing rows does not block writes.
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_dispatched_at
    CHECK (status <> 'dispatched' OR dispatched_at IS NOT NULL) NOT VALID;
ALTER TABLE webhook_deliveries VALIDATE CONSTRAINT webhook_deliveries_dispatched_at;

-- The sweep and the backlog metric look at overdue dispatched rows: when
-- their task was due (rows the previous release dispatches during a deploy
-- have only dispatched_at).
DROP INDEX webhook_deliveries_dispatched;
CREATE INDEX webhook_deliveries_dispatched ON webhook_deliveries ((COALESCE(next_attempt_at, dispatched_at)))
    WHERE status = 'dispatched';

-- Listings page newest first with keyset cursors (created_at, id), per agent
-- and per client; recover finds a recipient's dead deliveries by time of death.
DROP INDEX webhook_deliveries_by_agent;
CREATE INDEX webhook_deliveries_by_agent ON webhook_deliveries (agent_id, created_at, id) WHERE agent_id IS NOT NULL;
CREATE INDEX webhook_deliveries_by_client ON webhook_deliveries (client_id, created_at, id) WHERE client_id IS NOT NULL;
-- The same filtered by status (e.g. `dead`), without walking every delivered row.
CREATE INDEX webhook_deliveries_by_agent_status ON webhook_deliveries (agent_id, status, created_at, id)
    WHERE agent_id IS NOT NULL;
CREATE INDEX webhook_deliveries_by_client_status ON webhook_deliveries (client_id, status, created_at, id)
    WHERE client_id IS NOT NULL;
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
-- Retry-After), no delivery to the URL is sent before `retry_at`; then one
-- delivery at a time probes it. A success deletes the row, so the table
-- holds only URLs that are failing or throttled.
CREATE TABLE endpoint_health (
    url          text PRIMARY KEY,
    -- Nothing is sent to the URL before this.
    retry_at     timestamptz NOT NULL,
    -- A probe is in flight until this; the others wait for its outcome.
    probe_until  timestamptz
);
-- For dropping rows nothing has waited on for a long time.
CREATE INDEX endpoint_health_by_retry ON endpoint_health (retry_at);
