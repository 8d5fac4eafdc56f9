-- The previous migration's checks, validated against the rows already
-- stored. In a transaction of its own: VALIDATE takes a lock that lets
-- reads and writes go on while it scans.
ALTER TABLE jobs
    VALIDATE CONSTRAINT jobs_status_check,
    VALIDATE CONSTRAINT jobs_expired_because_check,
    VALIDATE CONSTRAINT jobs_idempotency_key_check;
ALTER TABLE events VALIDATE CONSTRAINT events_aggregate_type_check;
ALTER TABLE webhook_deliveries
    VALIDATE CONSTRAINT webhook_deliveries_status_check,
    VALIDATE CONSTRAINT webhook_deliveries_last_outcome_check;
ALTER TABLE delivery_attempts VALIDATE CONSTRAINT delivery_attempts_outcome_check;
