-- Clients: whoever hires agents. A client is its Ed25519 key; it registers
-- itself by signing the registration with that key.
CREATE TABLE clients (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    public_key  bytea NOT NULL CHECK (octet_length(public_key) = 32),
    -- Signs the webhooks sent to the client's job callback URLs.
    webhook_secret text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clients_public_key_unique UNIQUE (public_key)
);
