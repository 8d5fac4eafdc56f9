-- Webhook secrets encrypted at rest (envelope encryption, shared/src/sealing):
-- the sealed columns hold them from now on. A migration cannot encrypt (the
-- key is not in the database), so the plaintext columns stay, nullable, until
-- `api migrate` and the API's maintenance task have sealed every row that
-- still holds one (`seal_legacy_secrets`); nothing writes them any more.
ALTER TABLE agents
    ADD COLUMN webhook_secret_sealed bytea,
    ADD COLUMN previous_webhook_secret_sealed bytea,
    ALTER COLUMN webhook_secret DROP NOT NULL,
    DROP CONSTRAINT agents_previous_secret_has_expiry,
    -- Exactly one form of the current secret.
    ADD CONSTRAINT agents_one_webhook_secret
        CHECK ((webhook_secret IS NULL) <> (webhook_secret_sealed IS NULL)),
    ADD CONSTRAINT agents_previous_secret_has_expiry
        CHECK ((previous_webhook_secret IS NULL AND previous_webhook_secret_sealed IS NULL)
               = (previous_webhook_secret_expires_at IS NULL));

DROP INDEX agents_previous_secret_expiry;
CREATE INDEX agents_previous_secret_expiry ON agents (previous_webhook_secret_expires_at)
    WHERE previous_webhook_secret_expires_at IS NOT NULL;

ALTER TABLE clients
    ADD COLUMN webhook_secret_sealed bytea,
    ALTER COLUMN webhook_secret DROP NOT NULL,
    ADD CONSTRAINT clients_one_webhook_secret
        CHECK ((webhook_secret IS NULL) <> (webhook_secret_sealed IS NULL));
