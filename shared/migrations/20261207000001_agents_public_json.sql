-- Each agent's public JSON (its `GET /v1/agents/{id}` answer, and its entry
-- on a discovery page), written by Postgres with every change to the row, so
-- a read sends it as stored. Decoding a row's sixteen columns and writing
-- them out as JSON was about three quarters of the API's instructions on an
-- uncached discovery page. The bytes are exactly serde's for the API's
-- `PublicAgent` (`tests/tests/api/public_json.rs` holds them to it), and a
-- trigger writes them, so every writer (the API, the worker, the reputation
-- refresh, a bulk load) keeps them exact, in the same statement.

-- The host of a stored endpoint URL, as `http::Uri::host` reads it: after
-- any user info, an IPv6 literal with its brackets, no port. Stored URLs are
-- `url`'s serialization, so ASCII.
CREATE FUNCTION url_host(url text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#]*@)?(\[[^]/?#]*\]|[^:/?#]*)'), '');

-- A time as JSON, the way the `time` crate writes RFC 3339: in UTC with `Z`,
-- a fraction only when it is not zero and without its trailing zeros.
CREATE FUNCTION json_rfc3339(at timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN at IS NULL THEN 'null' ELSE
    '"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || coalesce('.' || nullif(rtrim(to_char(at AT TIME ZONE 'UTC', 'US'), '0'), ''), '')
        || 'Z"'
END;

-- `PublicAgent`'s fields in its order, as serde writes them: strings
-- escaped as serde_json escapes them (which `to_json` does too), the price
-- without trailing zeros (`Price::from_stored`), rating and score at their
-- columns' scales.
CREATE FUNCTION agent_public_json(a agents) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
RETURN '{"id":"agt_' || replace(a.id::text, '-', '')
    || '","name":' || to_json(a.name)::text
    || ',"description":' || to_json(a.description)::text
    || ',"capabilities":' || to_json(a.capabilities)::text
    || ',"public_key":"' || encode(a.public_key, 'base64')
    || '","price":"' || trim_scale(a.price)::text
    || '","rating":"' || a.rating::text
    || '","rating_count":' || a.rating_count::text
    || ',"uncounted_rating_count":' || a.uncounted_rating_count::text
    || ',"score":"' || a.score::text
    || '","last_seen_at":' || json_rfc3339(a.last_seen_at)
    || ',"active":' || CASE WHEN a.active THEN 'true' ELSE 'false' END
    || ',"endpoint_disabled_at":' || json_rfc3339(a.endpoint_disabled_at)
    || ',"created_at":' || json_rfc3339(a.created_at)
    || ',"updated_at":' || json_rfc3339(a.updated_at)
    || ',"endpoint_host":' || to_json(url_host(a.endpoint_url))::text
    || '}';

ALTER TABLE agents ADD COLUMN public_json text;
UPDATE agents SET public_json = agent_public_json(agents);
ALTER TABLE agents ALTER COLUMN public_json SET NOT NULL;

-- Every update, not a list of columns: a column added to the JSON later
-- cannot be forgotten here. Updates that change none of its fields (the
-- worker's endpoint health) pay one function call.
CREATE FUNCTION agents_public_json() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.public_json := agent_public_json(NEW);
    RETURN NEW;
END $$;

CREATE TRIGGER agents_public_json BEFORE INSERT OR UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_public_json();
