-- Creating a job and recording a delivery attempt are the hot path, and
-- their foreign keys cost them a query each: every job checked its agent,
-- its client, and its delivery's event, job and agent, each check locking
-- the row it found (FOR KEY SHARE: a write to the page and to the WAL, and a
-- multixact when two jobs to one agent commit at once); every attempt
-- checked its delivery. Measured with pgbench (xtask/bench/create_job.pgbench)
-- with the agent's row no longer locked either: -19 % Postgres CPU and
-- 2.4 KB of WAL instead of 6.6-9.2 KB per statement (docs/PERFORMANCE.md).
--
-- They re-checked what the statements had just read: every such reference
-- is written from the row it names, selected in the same statement or
-- transaction (`api::features::jobs::store::create`, `api::outbox`, the
-- worker's record), and those rows are never deleted. The keys' other half,
-- that a referenced row cannot go away, is kept by the guard below: it
-- refuses a DELETE, a TRUNCATE or a change of id on the parent tables.
-- The tables written off the hot path (ratings, receipts and the rest)
-- keep their keys.
ALTER TABLE jobs
    DROP CONSTRAINT jobs_agent_id_fkey,
    DROP CONSTRAINT jobs_client_id_fkey;
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_event_id_fkey,
    DROP CONSTRAINT webhook_deliveries_job_id_fkey,
    DROP CONSTRAINT webhook_deliveries_agent_id_fkey,
    DROP CONSTRAINT webhook_deliveries_client_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey;

CREATE FUNCTION refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are kept for good: other rows refer to them by id', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

-- Statement triggers: they cost an insert or an ordinary update nothing.
CREATE TRIGGER agents_are_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER clients_are_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER jobs_are_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER events_are_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER webhook_deliveries_are_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
