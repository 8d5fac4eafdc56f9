-- Fair delivery: a new round (resend, recover, redrive) is queued by the
-- time it was queued, the relay shares each batch between recipients, and a
-- delivery the egress policy refused is not started over to the same URL.
-- Written so the previous release keeps working during a deploy (new
-- columns are defaulted or nullable; its relay, ordering by created_at, finds
-- the pending rows through a pending index and sorts them).

-- When the delivery's current round was queued: its creation, or the
-- resend, recover or redrive that started it over. The relay takes each
-- recipient's pending rows in this order, so a recovered 14-day-old
-- delivery queues behind what was queued before it, not ahead.
ALTER TABLE webhook_deliveries ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
UPDATE webhook_deliveries SET queued_at = created_at WHERE status = 'pending';

-- What the round's last attempt came to (the `Outcome` the worker records
-- with it); NULL until an attempt is recorded. `refused` (the egress policy
-- refused the target) keeps the delivery from being started over until the
-- agent's endpoint is another URL.
ALTER TABLE webhook_deliveries ADD COLUMN last_outcome text
    CHECK (last_outcome IN ('delivered', 'retry', 'dead', 'gone', 'refused'));

COMMENT ON COLUMN webhook_deliveries.resends IS
    'New rounds started (resends, recoveries and redrives together), capped per delivery';

-- The relay walks the recipients that have pending rows (a skip scan on the
-- first column) and takes each one's oldest queued rows.
CREATE INDEX webhook_deliveries_pending_by_recipient
    ON webhook_deliveries ((COALESCE(agent_id, client_id)), queued_at) WHERE status = 'pending';
-- The backlog metric's oldest pending row, by when it was queued.
DROP INDEX webhook_deliveries_pending;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (queued_at) WHERE status = 'pending';
