-- Job receipts: the platform's signed statement of a finished job (completed
-- or failed), issued in the transaction that finishes it and signed again,
-- with the score, in the one that rates it. Kept as issued (a compact JWS):
-- a receipt verifies offline against /.well-known/jwks.json for as long as
-- the key that signed it is published, whichever key signs today.
-- Backward compatible: a new table; jobs finished earlier have no receipt.
CREATE TABLE job_receipts (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id),
    agent_id    uuid NOT NULL REFERENCES agents (id),
    -- When the job finished: the order of an agent's receipts, fixed for good.
    finished_at timestamptz NOT NULL,
    -- Bounded: the claims are ids, amounts, times and a hash (well under 1 KB signed).
    jws         text NOT NULL CHECK (octet_length(jws) <= 4096),
    issued_at   timestamptz NOT NULL DEFAULT now()
);
-- An agent's receipts, newest first, in keyset pages.
CREATE INDEX job_receipts_by_agent ON job_receipts (agent_id, finished_at, job_id);
