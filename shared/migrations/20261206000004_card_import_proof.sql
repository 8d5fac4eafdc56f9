-- How an imported Agent Card's claims of identity (its provider and
-- interfaces) were proven, and the site (registrable domain) they hold for:
-- 'card_host' (fetched from that site) or 'jws' (its A2A signature verified
-- with a key published there); 'unverified' otherwise. The registry signs
-- the claims as the agent's only while the agent's endpoint is on that site.
-- Backward compatible: new columns with a default. Imports made before were
-- never proven: they are unverified, and their ETag is dropped so the next
-- refresh fetches the whole card and proves it.
ALTER TABLE agent_card_imports
    ADD COLUMN proof text NOT NULL DEFAULT 'unverified' CHECK (proof IN ('unverified', 'card_host', 'jws')),
    ADD COLUMN proven_site text CHECK (char_length(proven_site) <= 253),
    ADD CONSTRAINT agent_card_imports_proof_site CHECK ((proof = 'unverified') = (proven_site IS NULL));

UPDATE agent_card_imports SET etag = NULL;
