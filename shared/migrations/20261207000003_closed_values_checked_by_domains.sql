-- The hot tables' closed sets of values (statuses, outcomes, kinds) and the
-- idempotency key's length are checked by casting the column to a domain
-- that holds the rule, instead of by the rule itself in a table CHECK.
-- Postgres reads a table's CHECK constraints from their stored node text and
-- plans them again for every statement that inserts or updates its rows,
-- whichever columns the statement sets: a value list is about a kilobyte of
-- that text, parsed node by node, and folded into an array each time; a
-- lease that only sets `lease_until` paid for both of `webhook_deliveries`'
-- lists, a job's creation for all six rules here. A domain's own checks are
-- kept parsed and planned per connection (the type cache), so the table's
-- check is now a cast and a null test: a few nodes, no list.
--
-- The columns keep their type. Typed as the domains they would skip even the
-- cast, but the change would alter what the previous release's prepared
-- statements return, which fails them ("cached plan must not change result
-- type") while it still serves during a deploy, and it rebuilds, under an
-- exclusive lock, every index that names one of these columns (9 of the 20
-- on these tables, all the status-keyed ones of `webhook_deliveries`). The values
-- allowed are the same; a value outside them is refused by the domain's check
-- (SQLSTATE 23514, the domain's constraint named). The constraints are added
-- NOT VALID here, with a brief lock, and validated by the next migration,
-- which scans without blocking writes. The lock is brief only if granted at
-- once: rather than queue every request to these tables behind it while it
-- waits for a long transaction, the migration gives up (and the deploy
-- stops, the previous release serving) after a few seconds.
--
-- Narrowing a set later: `ALTER DOMAIN ... ADD CONSTRAINT` checks only
-- columns of the domain's type, which none is; re-add the table's check NOT
-- VALID and validate it, so the stored rows are checked.

SET LOCAL lock_timeout = '5s';

CREATE DOMAIN job_status AS text
    CHECK (VALUE IN ('pending', 'accepted', 'completed', 'failed', 'cancelled', 'expired'));
CREATE DOMAIN job_expiry_reason AS text CHECK (VALUE IN ('accept_window', 'deadline'));
CREATE DOMAIN job_idempotency_key AS text CHECK (char_length(VALUE) BETWEEN 1 AND 255);
CREATE DOMAIN event_aggregate_type AS text CHECK (VALUE IN ('agent', 'job'));
CREATE DOMAIN delivery_status AS text CHECK (VALUE IN ('pending', 'dispatched', 'delivered', 'dead'));
CREATE DOMAIN attempt_outcome AS text CHECK (VALUE IN ('delivered', 'retry', 'dead', 'gone', 'refused'));

-- jobs_price_check (`price >= 0`) goes: jobs_check (`fee >= 0 AND fee <=
-- price`, both columns NOT NULL) already implies it, and each check is parsed
-- for every write.
ALTER TABLE jobs
    DROP CONSTRAINT jobs_price_check,
    DROP CONSTRAINT jobs_status_check,
    ADD CONSTRAINT jobs_status_check CHECK (status::job_status IS NOT NULL) NOT VALID,
    DROP CONSTRAINT jobs_expired_because_check,
    ADD CONSTRAINT jobs_expired_because_check
        CHECK (expired_because IS NULL OR expired_because::job_expiry_reason IS NOT NULL) NOT VALID,
    DROP CONSTRAINT jobs_idempotency_key_check,
    ADD CONSTRAINT jobs_idempotency_key_check
        CHECK (idempotency_key IS NULL OR idempotency_key::job_idempotency_key IS NOT NULL) NOT VALID;
ALTER TABLE events
    DROP CONSTRAINT events_aggregate_type_check,
    ADD CONSTRAINT events_aggregate_type_check CHECK (aggregate_type::event_aggregate_type IS NOT NULL) NOT VALID;
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_status_check,
    ADD CONSTRAINT webhook_deliveries_status_check CHECK (status::delivery_status IS NOT NULL) NOT VALID,
    DROP CONSTRAINT webhook_deliveries_last_outcome_check,
    ADD CONSTRAINT webhook_deliveries_last_outcome_check
        CHECK (last_outcome IS NULL OR last_outcome::attempt_outcome IS NOT NULL) NOT VALID;
ALTER TABLE delivery_attempts
    DROP CONSTRAINT delivery_attempts_outcome_check,
    ADD CONSTRAINT delivery_attempts_outcome_check CHECK (outcome::attempt_outcome IS NOT NULL) NOT VALID;
