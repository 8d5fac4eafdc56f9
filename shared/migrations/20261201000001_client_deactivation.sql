-- Clients can be deactivated (DELETE /v1/clients/{id}), as agents can: a
-- deactivated client's key signs nothing any more.
ALTER TABLE clients
    ADD COLUMN active boolean NOT NULL DEFAULT true,
    ADD COLUMN deactivated_at timestamptz;
