-- The rows still holding a plaintext webhook secret, for
-- `shared::sealing::seal_legacy_secrets`: without these its batches scanned
-- the table from the start each time, past every row already sealed
-- (quadratic: a million agents would take hours to seal), and the
-- maintenance task's check every minute read the whole table. Empty once
-- every secret is sealed.
CREATE INDEX agents_unsealed_secrets ON agents (id)
    WHERE webhook_secret IS NOT NULL OR previous_webhook_secret IS NOT NULL;
CREATE INDEX clients_unsealed_secrets ON clients (id) WHERE webhook_secret IS NOT NULL;
