-- Private receipts: the receipt anyone may read names neither the job's
-- client nor its rating. Each finished job now has two receipts, both signed
-- with the platform key:
--   jws        the full receipt, for the job's two parties: client_id, the
--              rating once rated (re-signed then), the salt and commitment;
--   public_jws the public one: `client_commitment` (hex SHA-256 of the salt,
--              then the client id) instead of client_id, no rating; signed
--              once, when the job finishes, and never changed by a rating.
-- client_salt: 32 random bytes per job; only ever shown to the parties.
-- Backward compatible: new nullable columns, `jws` keeps its meaning for
-- an older revision (which rates and reads it as before). A migration cannot
-- sign (the key is not in the database), so receipts without a public form
-- (finished before this, or by an older revision during the roll-out) get
-- their salt and public receipt from the API's maintenance task (a bounded
-- pass every minute) or a party's read; the public listing leaves them out
-- until then.
ALTER TABLE job_receipts
    ADD COLUMN client_salt bytea CHECK (octet_length(client_salt) = 32),
    ADD COLUMN public_jws text CHECK (octet_length(public_jws) <= 4096),
    ADD COLUMN public_issued_at timestamptz,
    ADD CONSTRAINT job_receipts_public_form_whole CHECK (
        (client_salt IS NULL) = (public_jws IS NULL) AND (public_jws IS NULL) = (public_issued_at IS NULL));
-- The receipts still to make private, found without a scan.
CREATE INDEX job_receipts_without_public_form ON job_receipts (job_id) WHERE public_jws IS NULL;
