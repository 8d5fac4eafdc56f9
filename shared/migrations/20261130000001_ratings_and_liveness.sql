-- Ratings, the reputation score discovery sorts by, and agent liveness.
-- Backward compatible: new columns have defaults, and every existing agent
-- gets the score its (empty) history gives.

-- A job's client rates the finished job, once (the primary key).
CREATE TABLE job_ratings (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id),
    agent_id    uuid NOT NULL REFERENCES agents (id),
    client_id   uuid NOT NULL REFERENCES clients (id),
    score       smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     text CHECK (char_length(comment) BETWEEN 1 AND 1000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- An agent's ratings, newest first, in keyset pages.
CREATE INDEX job_ratings_by_agent ON job_ratings (agent_id, created_at, job_id);

-- The prior of the reputation score: an agent's score is the Bayesian
-- average (weight · mean + Σ scores) / (weight + n), so a few ratings move it
-- little and many move it to their mean. The API copies RATING_PRIOR_WEIGHT
-- and RATING_PRIOR_MEAN here; a change rescores every agent in batches,
-- walking ids up to `rescored_through` (NULL when no rescoring is under way).
CREATE TABLE reputation_prior (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    weight            numeric NOT NULL CHECK (weight > 0),
    mean              numeric NOT NULL CHECK (mean BETWEEN 1 AND 5),
    rescored_through  uuid
);
INSERT INTO reputation_prior (weight, mean) VALUES (10, 3);

-- The one definition of the score, for the rating that changes it and for a
-- rescoring; six decimals, as stored.
CREATE FUNCTION reputation_score(rating_sum integer, rating_count integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT round((weight * mean + rating_sum) / (weight + rating_count), 6) FROM reputation_prior
$$;

ALTER TABLE agents
    ADD COLUMN rating_sum integer NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    ADD COLUMN score numeric(7, 6) NOT NULL DEFAULT 3 CHECK (score BETWEEN 0 AND 5),
    -- Set by the agent's heartbeats, at most once a minute.
    ADD COLUMN last_seen_at timestamptz;
-- New agents start at the prior's mean, whatever it is then (set after the
-- column exists: a non-constant default in ADD COLUMN rewrites the table).
ALTER TABLE agents ALTER COLUMN score SET DEFAULT reputation_score(0, 0);
UPDATE agents SET rating_sum = round(rating * rating_count), score = reputation_score(round(rating * rating_count)::integer, rating_count)
WHERE rating_count > 0;

-- Discovery's rating sort walks the score, best first.
DROP INDEX agents_by_rating;
CREATE INDEX agents_by_score ON agents (score, id) WHERE active;

ALTER TABLE agent_tags ADD COLUMN score numeric(7, 6) NOT NULL DEFAULT 3;
ALTER TABLE agent_tags ALTER COLUMN score DROP DEFAULT;
UPDATE agent_tags t SET score = a.score FROM agents a WHERE a.id = t.agent_id AND a.rating_count > 0;
DROP INDEX agent_tags_by_rating;
-- As the rating index was, keyed on the score; the mean stays on the entry
-- for `min_rating`.
CREATE INDEX agent_tags_by_score ON agent_tags (tag, score, agent_id) INCLUDE (capabilities, price, rating, search);

CREATE OR REPLACE FUNCTION agent_tags_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agent_tags (tag, agent_id, rating, score, price, created_at, capabilities, search)
    SELECT DISTINCT tag, a.id, a.rating, a.score, a.price, a.created_at, a.capabilities, a.search
    FROM inserted a, unnest(a.capabilities) AS tag
    WHERE a.active;
    RETURN NULL;
END $$;

-- As before, with the score: heartbeats and endpoint health change none of
-- these, so they rewrite no tag rows.
CREATE OR REPLACE FUNCTION agent_tags_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agent_tags t
    USING before o JOIN after n USING (id)
    WHERE t.agent_id = n.id
      AND (o.capabilities, o.rating, o.score, o.price, o.created_at, o.active, o.search)
          IS DISTINCT FROM (n.capabilities, n.rating, n.score, n.price, n.created_at, n.active, n.search);
    INSERT INTO agent_tags (tag, agent_id, rating, score, price, created_at, capabilities, search)
    SELECT DISTINCT tag, n.id, n.rating, n.score, n.price, n.created_at, n.capabilities, n.search
    FROM before o JOIN after n USING (id), unnest(n.capabilities) AS tag
    WHERE n.active
      AND (o.capabilities, o.rating, o.score, o.price, o.created_at, o.active, o.search)
          IS DISTINCT FROM (n.capabilities, n.rating, n.score, n.price, n.created_at, n.active, n.search);
    RETURN NULL;
END $$;
