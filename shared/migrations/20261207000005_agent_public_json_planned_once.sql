-- A write to an agent's row (a heartbeat's `last_seen_at`, an update, a
-- rating) computes its public JSON again in the statement, and as SQL
-- functions that the planner cannot inline (each declared IMMUTABLE over a
-- body that calls the STABLE `to_json` or `to_char`), `agent_public_json`
-- and the four `json_rfc3339` calls in it were read back from their stored
-- trees and planned again for every such statement (the inner ones for
-- every call), then run through the executor row by row: half of a
-- heartbeat's Postgres CPU.
--
-- `json_rfc3339` is declared STABLE, what its body is, so the planner
-- inlines it; `agent_public_json` is PL/pgSQL, whose body a connection
-- parses and plans once and keeps. It stays IMMUTABLE, as a generated
-- column requires (its patterns read no locale or time zone setting). The
-- expression and so the bytes are the same (`tests/tests/api/public_json.rs`),
-- and no stored row changes; the previous release reads the column as before.
-- PL/pgSQL looks names up when it runs, under the writer's search_path (empty
-- in a pg_dump restore and in logical replication's apply), so the body names
-- its functions with their schema; Postgres no longer records that it
-- depends on them, so neither may be dropped while it calls them.

ALTER FUNCTION json_rfc3339(timestamptz) STABLE;

CREATE OR REPLACE FUNCTION agent_public_json(
    id uuid, name text, description text, capabilities text[], endpoint_url text, public_key bytea,
    price numeric, rating numeric, rating_count integer, uncounted_rating_count integer, score numeric,
    last_seen_at timestamptz, active boolean, endpoint_disabled_at timestamptz,
    created_at timestamptz, updated_at timestamptz
) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
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
        || '","last_seen_at":' || public.json_rfc3339(last_seen_at)
        || ',"active":' || CASE WHEN active THEN 'true' ELSE 'false' END
        || ',"endpoint_disabled_at":' || public.json_rfc3339(endpoint_disabled_at)
        || ',"created_at":' || public.json_rfc3339(created_at)
        || ',"updated_at":' || public.json_rfc3339(updated_at)
        || ',"endpoint_host":' || to_json(public.url_host(endpoint_url))::text
        || '}';
END
$$;
