-- Each agent's public JSON (its `GET /v1/agents/{id}` answer, and its entry
-- on a discovery page), kept by Postgres as a generated column, so a read
-- sends it as stored. Decoding a row's sixteen columns and writing them out
-- as JSON was most of the API's instructions on an uncached discovery page.
-- The bytes are exactly serde's for the API's `PublicAgent`
-- (`tests/tests/api/public_json.rs` holds them to it). A generated column,
-- not a trigger: Postgres computes it in every statement that changes one
-- of its columns, whoever writes, and only then (a BEFORE ROW trigger would
-- make every update recompute `search` too).
--
-- Adding it rewrites `agents` under an exclusive lock: reads and writes of
-- agents wait for it (12 s for 100k agents on the bench's box, with a CI
-- run beside it).

-- The host of a stored endpoint URL, as `url::Url::host_str` reads it:
-- after any user info, an IPv6 literal with its brackets, no port. Stored
-- URLs are `url`'s serialization, so ASCII.
CREATE FUNCTION url_host(url text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#]*@)?(\[[^]/?#]*\]|[^:/?#]*)'), '');

-- A time as JSON, the way the `time` crate writes RFC 3339: in UTC with `Z`,
-- a fraction only when it is not zero and without its trailing zeros.
-- Immutable although `to_char` is only stable: these patterns read no
-- locale or time zone setting.
CREATE FUNCTION json_rfc3339(at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN at IS NULL THEN 'null' ELSE
    '"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || coalesce('.' || nullif(rtrim(to_char(at AT TIME ZONE 'UTC', 'US'), '0'), ''), '')
        || 'Z"'
END;

-- `PublicAgent`'s fields in its order, as serde writes them: strings
-- escaped as serde_json escapes them (which `to_json` does too), the price
-- without trailing zeros (`Price::from_stored`), rating and score at their
-- columns' scales, the key in base64 on one line (a 32-byte key, which the
-- table's check ensures, is 44 characters; `encode` breaks lines at 76).
CREATE FUNCTION agent_public_json(
    id uuid, name text, description text, capabilities text[], endpoint_url text, public_key bytea,
    price numeric, rating numeric, rating_count integer, uncounted_rating_count integer, score numeric,
    last_seen_at timestamptz, active boolean, endpoint_disabled_at timestamptz,
    created_at timestamptz, updated_at timestamptz
) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '{"id":"agt_' || replace(id::text, '-', '')
    || '","name":' || to_json(name)::text
    || ',"description":' || to_json(description)::text
    || ',"capabilities":' || to_json(capabilities)::text
    || ',"public_key":"' || encode(public_key, 'base64')
    || '","price":"' || trim_scale(price)::text
    || '","rating":"' || rating::text
    || '","rating_count":' || rating_count::text
    || ',"uncounted_rating_count":' || uncounted_rating_count::text
    || ',"score":"' || score::text
    || '","last_seen_at":' || json_rfc3339(last_seen_at)
    || ',"active":' || CASE WHEN active THEN 'true' ELSE 'false' END
    || ',"endpoint_disabled_at":' || json_rfc3339(endpoint_disabled_at)
    || ',"created_at":' || json_rfc3339(created_at)
    || ',"updated_at":' || json_rfc3339(updated_at)
    || ',"endpoint_host":' || to_json(url_host(endpoint_url))::text
    || '}';

ALTER TABLE agents ADD COLUMN public_json text NOT NULL GENERATED ALWAYS AS (agent_public_json(
    id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count,
    uncounted_rating_count, score, last_seen_at, active, endpoint_disabled_at, created_at, updated_at
)) STORED;
