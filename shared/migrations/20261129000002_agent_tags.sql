-- Discovery by capability, at a cost that does not grow with the catalog.
--
-- A GIN index finds every agent with a tag, and the page is then sorted
-- from all of them: a common tag at 1M agents means sorting ~170k rows, and
-- a rare one made the planner walk the whole sort index instead. Here each
-- (tag, agent) pair of an active agent is a row, with the agent's sort keys
-- copied, and each sort order has a btree per tag: a page is a range scan of
-- one tag's rows in order that stops after LIMIT matches. The other filters
-- (more tags, price, rating, and text for the default sort) are checked on
-- the index entry itself
-- (INCLUDE), so an index-only scan skips non-matching agents without
-- touching the agents table.
--
-- Kept by triggers on agents, so every writer (the API, the worker, a bulk
-- load) keeps it exact, in the same transaction.
CREATE TABLE agent_tags (
    tag          text NOT NULL,
    agent_id     uuid NOT NULL,
    rating       numeric(3, 2) NOT NULL,
    price        numeric(18, 6) NOT NULL,
    created_at   timestamptz NOT NULL,
    capabilities text[] NOT NULL,
    search       tsvector NOT NULL,
    PRIMARY KEY (agent_id, tag)
);

-- The default sort also carries the text, so a word within a tag is checked
-- on the entry too (7× faster for a 1-in-25 word than a lookup per entry);
-- the other sorts read it from the row.
CREATE INDEX agent_tags_by_rating ON agent_tags (tag, rating, agent_id) INCLUDE (capabilities, price, search);
CREATE INDEX agent_tags_by_price ON agent_tags (tag, price, agent_id) INCLUDE (capabilities, rating);
CREATE INDEX agent_tags_by_created ON agent_tags (tag, created_at, agent_id) INCLUDE (capabilities, price, rating);

-- The API reads each tag's frequency from these statistics to walk the
-- rarest tag of a multi-tag search; a long list keeps rare tags distinct.
ALTER TABLE agent_tags ALTER COLUMN tag SET STATISTICS 1000;

CREATE FUNCTION agent_tags_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agent_tags (tag, agent_id, rating, price, created_at, capabilities, search)
    SELECT DISTINCT tag, a.id, a.rating, a.price, a.created_at, a.capabilities, a.search
    FROM inserted a, unnest(a.capabilities) AS tag
    WHERE a.active;
    RETURN NULL;
END $$;

-- Only agents whose tags, sort keys, text or activity changed are rewritten: the
-- worker's endpoint-health updates touch agents often and change none.
-- Two statements, not one with a deleting CTE: a CTE's order against the
-- insert is unspecified, and the insert must see the old rows gone.
CREATE FUNCTION agent_tags_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agent_tags t
    USING before o JOIN after n USING (id)
    WHERE t.agent_id = n.id
      AND (o.capabilities, o.rating, o.price, o.created_at, o.active, o.search)
          IS DISTINCT FROM (n.capabilities, n.rating, n.price, n.created_at, n.active, n.search);
    INSERT INTO agent_tags (tag, agent_id, rating, price, created_at, capabilities, search)
    SELECT DISTINCT tag, n.id, n.rating, n.price, n.created_at, n.capabilities, n.search
    FROM before o JOIN after n USING (id), unnest(n.capabilities) AS tag
    WHERE n.active
      AND (o.capabilities, o.rating, o.price, o.created_at, o.active, o.search)
          IS DISTINCT FROM (n.capabilities, n.rating, n.price, n.created_at, n.active, n.search);
    RETURN NULL;
END $$;

CREATE FUNCTION agent_tags_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agent_tags t USING deleted d WHERE t.agent_id = d.id;
    RETURN NULL;
END $$;

CREATE TRIGGER agent_tags_insert AFTER INSERT ON agents
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION agent_tags_insert();
CREATE TRIGGER agent_tags_update AFTER UPDATE ON agents
    REFERENCING OLD TABLE AS before NEW TABLE AS after FOR EACH STATEMENT EXECUTE FUNCTION agent_tags_update();
CREATE TRIGGER agent_tags_delete AFTER DELETE ON agents
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION agent_tags_delete();

INSERT INTO agent_tags (tag, agent_id, rating, price, created_at, capabilities, search)
SELECT DISTINCT tag, a.id, a.rating, a.price, a.created_at, a.capabilities, a.search
FROM agents a, unnest(a.capabilities) AS tag
WHERE a.active;
