-- Reputation that reflects independent, paid work (issue 30).
--
-- A rating counts toward an agent's score only when its job cost at least
-- RATING_MIN_PRICE and its client and agent are not visibly one party (a
-- signing key both ever used, or registrations from one address within 24
-- hours); each client's counted ratings of an agent count once (their mean),
-- weighted by the client's age and its number of distinct paid
-- counterparties. Uncounted ratings are kept and listed, with the reason.
-- Backward compatible: new columns are nullable or have defaults, and
-- `reputation_score(integer, integer)` stays (the agents' column default and
-- the previous revision's ratings during a roll-out use it).

-- Where a party registered from, as the rate limiter buckets callers: an
-- IPv4 address or an IPv6 /64. NULL for rows older than this and for local
-- (loopback) registrations. Never shown.
ALTER TABLE agents ADD COLUMN registered_from inet;
ALTER TABLE clients ADD COLUMN registered_from inet;

-- Every signing key each agent and client has had, kept after a rotation
-- replaces it: registration and rotation add rows (the triggers below), so
-- no code path can forget to.
CREATE TABLE signing_key_history (
    public_key     bytea NOT NULL CHECK (octet_length(public_key) = 32),
    agent_id       uuid REFERENCES agents (id),
    client_id      uuid REFERENCES clients (id),
    first_used_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(agent_id, client_id) = 1)
);
CREATE UNIQUE INDEX signing_key_history_of_agent ON signing_key_history (agent_id, public_key) WHERE agent_id IS NOT NULL;
CREATE UNIQUE INDEX signing_key_history_of_client ON signing_key_history (client_id, public_key) WHERE client_id IS NOT NULL;
INSERT INTO signing_key_history (public_key, agent_id, first_used_at) SELECT public_key, id, created_at FROM agents;
INSERT INTO signing_key_history (public_key, client_id, first_used_at) SELECT public_key, id, created_at FROM clients;

CREATE FUNCTION remember_signing_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'agents' THEN
        INSERT INTO signing_key_history (public_key, agent_id) VALUES (NEW.public_key, NEW.id) ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO signing_key_history (public_key, client_id) VALUES (NEW.public_key, NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER agents_signing_key_history AFTER INSERT OR UPDATE OF public_key ON agents
    FOR EACH ROW EXECUTE FUNCTION remember_signing_key();
CREATE TRIGGER clients_signing_key_history AFTER INSERT OR UPDATE OF public_key ON clients
    FOR EACH ROW EXECUTE FUNCTION remember_signing_key();

-- RATING_MIN_PRICE, copied here by the API (as the prior is), and the
-- periodic refresh's place: it walks rated agents by id, wrapping around,
-- because raters' weights grow with their age and activity.
ALTER TABLE reputation_prior
    ADD COLUMN min_price numeric(18, 6) NOT NULL DEFAULT 1 CHECK (min_price >= 0),
    ADD COLUMN refreshed_through uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';

-- Why a job of this price between this client and agent does not count
-- toward the agent's reputation, or NULL when it counts. The one definition,
-- for a new rating, the backfill below and the counterparties.
CREATE FUNCTION why_uncounted(client uuid, agent uuid, price numeric) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN why_uncounted.price < (SELECT min_price FROM reputation_prior) THEN 'below_min_price'
        WHEN EXISTS (
            SELECT FROM signing_key_history c
            JOIN signing_key_history a ON a.agent_id = why_uncounted.agent AND a.public_key = c.public_key
            WHERE c.client_id = why_uncounted.client
        ) THEN 'same_signing_key'
        WHEN EXISTS (
            SELECT FROM clients c, agents a
            WHERE c.id = why_uncounted.client AND a.id = why_uncounted.agent
              AND c.registered_from = a.registered_from
              AND c.created_at BETWEEN a.created_at - interval '24 hours' AND a.created_at + interval '24 hours'
        ) THEN 'same_registration_address'
    END
$$;

-- The agents each client had a job completed by that would count (priced
-- at least the minimum then, unrelated parties; a failed job proves no
-- work): a client's distinct paid
-- counterparties, read at most N_FULL (5) rows at a time.
CREATE TABLE client_counterparties (
    client_id  uuid NOT NULL REFERENCES clients (id),
    agent_id   uuid NOT NULL REFERENCES agents (id),
    PRIMARY KEY (client_id, agent_id)
);
INSERT INTO client_counterparties (client_id, agent_id)
SELECT DISTINCT client_id, agent_id FROM jobs
WHERE status = 'completed' AND why_uncounted(client_id, agent_id, price) IS NULL;

CREATE FUNCTION remember_counterparty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF why_uncounted(NEW.client_id, NEW.agent_id, NEW.price) IS NULL THEN
        INSERT INTO client_counterparties (client_id, agent_id) VALUES (NEW.client_id, NEW.agent_id)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_counterparties AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'completed' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION remember_counterparty();

-- Set when the rating is given (by the rules then in force), NULL: counted.
ALTER TABLE job_ratings ADD COLUMN uncounted_reason text
    CHECK (uncounted_reason IN ('below_min_price', 'same_signing_key', 'same_registration_address'));
UPDATE job_ratings r SET uncounted_reason = why_uncounted(j.client_id, j.agent_id, j.price)
FROM jobs j WHERE j.id = r.job_id;
-- An agent's counted ratings by client: what a rescoring reads, from the
-- index alone.
CREATE INDEX job_ratings_counted ON job_ratings (agent_id, client_id) INCLUDE (score) WHERE uncounted_reason IS NULL;
CREATE INDEX job_ratings_uncounted ON job_ratings (agent_id) WHERE uncounted_reason IS NOT NULL;

-- How much a client's ratings weigh, 0 to 1: its age in whole days over
-- AGE_FULL (30 days; whole days, so a published weight does not give away
-- the client's registration time) times its distinct paid counterparties over N_FULL (5), each capped
-- at 1. Many new, idle or single-agent clients weigh little; weights only
-- grow, which the periodic refresh follows. A one-row table function, so
-- the planner inlines it into a rescoring's join (half the time of a call
-- per client).
CREATE FUNCTION rater_weight(client uuid) RETURNS TABLE (weight numeric)
LANGUAGE sql STABLE AS $$
    SELECT least(1, greatest(0, floor(extract(epoch FROM now() - c.created_at) / 86400)) / 30)
         * least(1, (SELECT count(*) FROM (
               SELECT FROM client_counterparties p WHERE p.client_id = rater_weight.client LIMIT 5
           ) AS five) / 5.0)
    FROM clients c WHERE c.id = rater_weight.client
$$;

-- One counted rating's share of the score: its client's weight, split
-- evenly over that client's counted ratings of the agent.
CREATE FUNCTION rating_weight(agent uuid, client uuid) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT (SELECT weight FROM rater_weight(rating_weight.client)) / count(*) FROM job_ratings r
    WHERE r.agent_id = rating_weight.agent AND r.client_id = rating_weight.client AND r.uncounted_reason IS NULL
$$;

-- An agent's standing, from its ratings: the sum and count of its counted
-- ratings, how many did not count, their weighted mean `rating` (Σ w_i·m_i
-- / Σ w_i, two decimals; 0 while no rater weighs anything: a plain mean
-- would let weightless clients pass `min_rating`), and its score, the Bayesian mean of the per-client means m_i weighted by w_i:
-- (prior.weight · prior.mean + Σ w_i·m_i) / (prior.weight + Σ w_i), six
-- decimals. The one definition of the score. VOLATILE: a rescoring that
-- waited for a rating's row lock computes it again on a fresh snapshot.
CREATE FUNCTION agent_standing(agent uuid,
    OUT rating_sum integer, OUT rating_count integer, OUT uncounted_rating_count integer,
    OUT rating numeric, OUT score numeric)
LANGUAGE sql VOLATILE AS $$
    WITH per_client AS (
        SELECT r.client_id, sum(r.score) AS total, count(*) AS n FROM job_ratings r
        WHERE r.agent_id = agent_standing.agent AND r.uncounted_reason IS NULL
        GROUP BY r.client_id
    ), weighted AS (
        SELECT total, n, rw.weight AS w FROM per_client, rater_weight(per_client.client_id) rw
    )
    SELECT COALESCE(sum(total), 0)::integer,
           COALESCE(sum(n), 0)::integer,
           (SELECT count(*) FROM job_ratings r
            WHERE r.agent_id = agent_standing.agent AND r.uncounted_reason IS NOT NULL)::integer,
           COALESCE(round(sum(w * total / n) / NULLIF(sum(w), 0), 2), 0),
           round((p.weight * p.mean + COALESCE(sum(w * total / n), 0)) / (p.weight + COALESCE(sum(w), 0)), 6)
    FROM reputation_prior p LEFT JOIN weighted ON true
    GROUP BY p.weight, p.mean
$$;

ALTER TABLE agents ADD COLUMN uncounted_rating_count integer NOT NULL DEFAULT 0 CHECK (uncounted_rating_count >= 0);

-- Every rated agent re-scored under these rules.
UPDATE agents a SET (rating_sum, rating_count, uncounted_rating_count, rating, score) =
    (SELECT s.rating_sum, s.rating_count, s.uncounted_rating_count, s.rating, s.score FROM agent_standing(a.id) s)
WHERE EXISTS (SELECT FROM job_ratings r WHERE r.agent_id = a.id);
