-- Job expiry (issue 13): a job not accepted in time, or accepted but not
-- finished by its deadline, is moved to `expired` by the API's expiry task.
-- Backward compatible: the new columns are nullable, and the release before
-- this one neither reads nor writes them.
ALTER TABLE jobs
    -- Until when the agent may accept (pending jobs): the creation time plus
    -- the accept window (`accept_within_seconds`, else
    -- JOB_ACCEPT_TIMEOUT_SECONDS), or the deadline when that comes first.
    -- NULL only on jobs that had left `pending` before this migration.
    ADD COLUMN accept_by timestamptz,
    -- Until when the agent may complete (accepted jobs); NULL: no deadline.
    ADD COLUMN deadline timestamptz,
    -- Which window had passed when the job expired; NULL unless expired.
    ADD COLUMN expired_because text CHECK (expired_because IN ('accept_window', 'deadline')),
    ADD CONSTRAINT jobs_expired_because_only_when_expired CHECK (expired_because IS NULL OR status = 'expired');

-- Pending jobs created before expiry existed get the default window (one
-- day from their creation), so they expire like new ones instead of waiting
-- forever; those older than a day expire on the task's first round.
UPDATE jobs SET accept_by = created_at + interval '1 day' WHERE status = 'pending' AND accept_by IS NULL;
-- The same for jobs the previous release still creates during a deploy (it
-- does not know the column): set after the backfill, so it applies to new
-- rows only. This release always writes accept_by itself.
ALTER TABLE jobs ALTER COLUMN accept_by SET DEFAULT now() + interval '1 day';

-- The expiry task's due scans: each a probe of a small partial index.
CREATE INDEX jobs_pending_by_accept_by ON jobs (accept_by) WHERE status = 'pending';
CREATE INDEX jobs_accepted_by_deadline ON jobs (deadline) WHERE status = 'accepted' AND deadline IS NOT NULL;
