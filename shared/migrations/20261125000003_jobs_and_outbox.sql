-- Jobs: a client hires an agent for one piece of work.
CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    client_id        uuid NOT NULL REFERENCES clients (id),
    agent_id         uuid NOT NULL REFERENCES agents (id),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'accepted', 'completed', 'failed', 'cancelled', 'expired')),
    input            jsonb NOT NULL,
    result           jsonb,
    failure_reason   text,
    price            numeric(18, 6) NOT NULL CHECK (price >= 0),
    -- price × PLATFORM_FEE_PERCENT at creation, kept: the fee rate may change later.
    fee              numeric(18, 6) NOT NULL CHECK (fee >= 0 AND fee <= price),
    callback_url     text,
    idempotency_key  text CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of the creating request, to tell a retry from a reused key.
    request_hash     bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_idempotency_key_unique UNIQUE (client_id, idempotency_key)
);
CREATE INDEX jobs_by_client ON jobs (client_id, created_at, id);
CREATE INDEX jobs_by_agent ON jobs (agent_id, created_at, id);

-- The outbox: every domain event, written in the transaction of the change
-- it describes, so no event is lost whatever fails afterwards.
CREATE TABLE events (
    id            uuid PRIMARY KEY,
    -- Commit order is not id order; this gives consumers one total order.
    position      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    aggregate_id  uuid NOT NULL,
    type          text NOT NULL,
    data          jsonb NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_by_aggregate ON events (aggregate_id, position);

-- One webhook delivery per event and target. The relay turns pending rows
-- into Cloud Tasks tasks; the worker delivers them and records each attempt.
CREATE TABLE webhook_deliveries (
    id             uuid PRIMARY KEY,
    event_id       uuid NOT NULL REFERENCES events (id),
    job_id         uuid REFERENCES jobs (id),
    -- Whose webhook secret signs it: the agent's (its endpoint) or the client's (a job callback).
    agent_id       uuid REFERENCES agents (id),
    client_id      uuid REFERENCES clients (id),
    target_url     text NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'dispatched', 'delivered', 'dead')),
    -- Bumped by a resend, so the new Cloud Tasks task gets a new name.
    generation     integer NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    -- Held by the worker while it sends, so a task pushed twice is sent once.
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    dispatched_at  timestamptz,
    finished_at    timestamptz,
    CONSTRAINT webhook_deliveries_one_recipient CHECK ((agent_id IS NULL) <> (client_id IS NULL))
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (created_at) WHERE status = 'pending';
-- For the relay's sweep of deliveries whose task ended without a final answer.
CREATE INDEX webhook_deliveries_dispatched ON webhook_deliveries (dispatched_at) WHERE status = 'dispatched';
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (job_id, created_at);
CREATE INDEX webhook_deliveries_by_agent ON webhook_deliveries (agent_id, created_at) WHERE agent_id IS NOT NULL;

CREATE TABLE delivery_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES webhook_deliveries (id),
    attempt          integer NOT NULL CHECK (attempt >= 1),
    started_at       timestamptz NOT NULL,
    latency_ms       integer NOT NULL,
    response_status  integer,
    -- The first 4 KB of the answer, for the owner's debugging.
    response_body    text,
    error            text,
    outcome          text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead', 'gone', 'refused'))
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- An endpoint that answered 410 Gone gets no more deliveries until it is updated.
ALTER TABLE agents ADD COLUMN endpoint_disabled_at timestamptz;
