-- The hot tables' closed sets of values (statuses, outcomes, kinds) and the
-- idempotency key's length are checked by domains instead of table CHECK
-- constraints. Postgres parses a table's CHECK constraints from their stored
-- text and plans them again for every statement that inserts or updates its
-- rows, whichever columns the statement sets: a lease that only sets
-- `lease_until` paid for every status list of `webhook_deliveries`, and a
-- job's creation for seven lists and bounds (create-job's statement alone:
-- 17 % of its Postgres CPU). A domain's checks are kept parsed and planned
-- per connection, and run only where a value is assigned to the column.
-- The values allowed are the same; cross-column checks stay on the tables.
--
-- Each column first becomes a domain without a check (over its own type, so
-- no row is rewritten), then the domain gets its check, which Postgres
-- verifies against the rows already stored. Indexes whose predicate names
-- one of these columns are rebuilt by the type change, and the trigger that
-- names `jobs.status` is made again around it (a column a trigger names
-- cannot change type).

CREATE DOMAIN job_status AS text;
CREATE DOMAIN job_expiry_reason AS text;
CREATE DOMAIN idempotency_key AS text;
CREATE DOMAIN aggregate_type AS text;
CREATE DOMAIN delivery_status AS text;
CREATE DOMAIN attempt_outcome AS text;

DROP TRIGGER jobs_counterparties ON jobs;
ALTER TABLE jobs
    ALTER COLUMN status TYPE job_status,
    ALTER COLUMN expired_because TYPE job_expiry_reason,
    ALTER COLUMN idempotency_key TYPE idempotency_key;
CREATE TRIGGER jobs_counterparties AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'completed' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION remember_counterparty();
ALTER TABLE events ALTER COLUMN aggregate_type TYPE aggregate_type;
ALTER TABLE webhook_deliveries
    ALTER COLUMN status TYPE delivery_status,
    ALTER COLUMN last_outcome TYPE attempt_outcome;
ALTER TABLE delivery_attempts ALTER COLUMN outcome TYPE attempt_outcome;

ALTER DOMAIN job_status ADD CONSTRAINT job_status_check
    CHECK (VALUE IN ('pending', 'accepted', 'completed', 'failed', 'cancelled', 'expired'));
ALTER DOMAIN job_expiry_reason ADD CONSTRAINT job_expiry_reason_check
    CHECK (VALUE IN ('accept_window', 'deadline'));
ALTER DOMAIN idempotency_key ADD CONSTRAINT idempotency_key_check
    CHECK (char_length(VALUE) BETWEEN 1 AND 255);
ALTER DOMAIN aggregate_type ADD CONSTRAINT aggregate_type_check
    CHECK (VALUE IN ('agent', 'job'));
ALTER DOMAIN delivery_status ADD CONSTRAINT delivery_status_check
    CHECK (VALUE IN ('pending', 'dispatched', 'delivered', 'dead'));
ALTER DOMAIN attempt_outcome ADD CONSTRAINT attempt_outcome_check
    CHECK (VALUE IN ('delivered', 'retry', 'dead', 'gone', 'refused'));

ALTER TABLE jobs
    DROP CONSTRAINT jobs_status_check,
    DROP CONSTRAINT jobs_expired_because_check,
    DROP CONSTRAINT jobs_idempotency_key_check;
ALTER TABLE events DROP CONSTRAINT events_aggregate_type_check;
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_status_check,
    DROP CONSTRAINT webhook_deliveries_last_outcome_check;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
