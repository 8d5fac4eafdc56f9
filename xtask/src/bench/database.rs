//! The bench's databases: created and dropped, seeded, and read between
//! the runs.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shared::progress::{Progress, Report};
use sqlx::{Connection, Executor, PgConnection};

use super::WEBHOOK_SECRET_KEY;

/// `database_url` with its database replaced by `name` (same server, user
/// and parameters).
pub(super) fn database_url_named(database_url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(database_url).context("BENCH_DATABASE_URL is not a URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

/// A connection to the `postgres` database of `database_url`'s server, and
/// the name of the database `database_url` names.
async fn admin_connection(database_url: &str) -> anyhow::Result<(PgConnection, String)> {
    let url = url::Url::parse(database_url).context("BENCH_DATABASE_URL is not a URL")?;
    let name = url.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("BENCH_DATABASE_URL must name a database of letters, digits and _");
    }
    let admin = database_url_named(database_url, "postgres")?;
    let admin = PgConnection::connect(&admin).await.context("cannot connect to Postgres")?;
    Ok((admin, name))
}

pub(super) async fn recreate_database(database_url: &str) -> anyhow::Result<()> {
    drop_database(database_url).await?;
    let (mut admin, name) = admin_connection(database_url).await?;
    admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#))).await?;
    Ok(())
}

pub(super) async fn drop_database(database_url: &str) -> anyhow::Result<()> {
    let (mut admin, name) = admin_connection(database_url).await?;
    admin.execute(sqlx::AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))).await?;
    Ok(())
}

/// The insert ceiling's table. Nothing reads it, and the database stays for
/// the whole run: an autovacuum of its rows would run on a scenario's time.
pub(super) async fn create_ceiling_insert_table(database_url: &str) -> anyhow::Result<()> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute(
        "CREATE TABLE ceiling_insert (
             id bigserial PRIMARY KEY,
             payload text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now()
         ) WITH (autovacuum_enabled = off)",
    )
    .await?;
    Ok(())
}

/// Active agents numbered `$1` to `$2`: six primary tags (one each), eight secondary tags
/// (one each), one of 500 rare `skill-N` tags; prices 1.00–100.99, 0–199
/// ratings averaging 1–5 (with the reputation score they give), unique
/// 32-byte keys; created a minute apart.
const SEED: &str = "
INSERT INTO agents (id, name, description, capabilities, endpoint_url, public_key, price, rating,
                    rating_count, rating_sum, score, webhook_secret, created_at, updated_at)
SELECT gen_random_uuid(),
       'Agent ' || i,
       (ARRAY['Translates documents between forty languages.', 'Summarises long reports into short briefs.',
              'Reviews code for bugs and style.', 'Extracts tables and fields from invoices.',
              'Writes captions for images.', 'Answers questions about a knowledge base.'])[1 + i % 6]
           || ' Bench agent number ' || i || '.',
       ARRAY[(ARRAY['translation', 'summarization', 'code-review', 'data-extraction', 'image-captioning',
                    'question-answering'])[1 + i % 6],
             (ARRAY['legal', 'finance', 'medical', 'marketing', 'education', 'support', 'research',
                    'gaming'])[1 + (i / 6) % 8],
             'skill-' || (i % 500)],
       'http://127.0.0.1:18090/agents/' || i,
       decode(lpad(to_hex(i), 64, '0'), 'hex'),
       1 + (i::bigint * 7919 % 10000) / 100.0,
       CASE WHEN ratings.count = 0 THEN 0 ELSE round(ratings.sum::numeric / ratings.count, 2) END,
       ratings.count,
       ratings.sum,
       reputation_score(ratings.sum, ratings.count),
       'whsec_' || encode(sha256(int4send(i)), 'base64'),
       now() - make_interval(mins => i),
       now()
FROM generate_series($1, $2) AS i,
     LATERAL (SELECT (i * 31) % 200 AS count) AS counted,
     LATERAL (SELECT counted.count, (counted.count * (100 + i::bigint * 104729 % 401) / 100)::integer AS sum) AS ratings";

/// A history of `$1` completed jobs (one client, the first `$1` agents),
/// each with its published `job.created` event and delivered webhook: a live
/// registry is never empty there. On empty tables, the API's and the
/// worker's connections would keep the plans they made on their first
/// statements while the scenarios fill them.
const SEED_HISTORY: &str = "
WITH client AS (
    INSERT INTO clients (id, name, public_key, webhook_secret)
    VALUES (gen_random_uuid(), 'Bench history', decode(repeat('ff', 32), 'hex'),
            'whsec_' || encode(sha256('bench history'), 'base64'))
    RETURNING id
), job AS (
    INSERT INTO jobs (id, client_id, agent_id, status, input, result, price, fee, accept_by, created_at, updated_at)
    SELECT gen_random_uuid(), client.id, agent.id, 'completed', '{\"task\": \"history\"}', '{\"done\": true}',
           agent.price, round(agent.price * 0.025, 6), agent.created_at, agent.created_at, agent.created_at
    FROM client, (SELECT id, price, created_at FROM agents ORDER BY id LIMIT $1) AS agent
    RETURNING id, agent_id, created_at
), event AS (
    INSERT INTO events (id, aggregate_type, aggregate_id, type, data, occurred_at, published_at)
    SELECT gen_random_uuid(), 'job', id, 'job.created', '{}', created_at, created_at FROM job
    RETURNING id, aggregate_id, occurred_at
)
INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, status, attempts, created_at,
                                dispatched_at, finished_at)
SELECT gen_random_uuid(), event.id, job.id, job.agent_id, 'http://127.0.0.1:18090/history', 'delivered', 1,
       job.created_at, job.created_at, job.created_at
FROM event JOIN job ON job.id = event.aggregate_id";

/// Agents inserted per statement: a few seconds' work, so progress shows.
const SEED_CHUNK: i32 = 50_000;

/// Seeds `agents` agents and a history of jobs (one per ten agents), then
/// `VACUUM ANALYZE` (an all-visible table for index-only scans, and
/// statistics); prints how long each took.
pub(super) async fn seed(database_url: &str, agents: u32) -> anyhow::Result<()> {
    let count = i32::try_from(agents).context("--agents must be at most 2147483647")?;
    let mut db = PgConnection::connect(database_url).await?;
    let started = Instant::now();
    let mut progress = Progress::new("seeding agents", "agents", Some(agents.into()), Report::terminal_if_any());
    for first in (1..=count).step_by(SEED_CHUNK as usize) {
        let last = first.saturating_add(SEED_CHUNK - 1).min(count);
        sqlx::query(SEED).bind(first).bind(last).execute(&mut db).await.context("seeding the agents failed")?;
        progress.add(u64::from((last - first + 1).unsigned_abs()));
    }
    progress.finish();
    sqlx::query(SEED_HISTORY).bind(count / 10).execute(&mut db).await.context("seeding the job history failed")?;
    let seeded = started.elapsed();
    // As `api migrate` would have: webhook secrets are sealed at rest, and
    // sealing during the measurements would load the API.
    let source = shared::settings::SettingsSource::from_pairs([
        ("DATABASE_URL", database_url),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("WEBHOOK_SECRET_KEY", WEBHOOK_SECRET_KEY),
    ]);
    let sealer = shared::sealing::Sealer::from_settings(&shared::settings::Settings::from_source(&source)?).await?;
    let pool = sqlx::PgPool::connect(database_url).await?;
    shared::sealing::seal_legacy_secrets(&pool, &sealer, usize::MAX, Report::terminal_if_any()).await?;
    let sealed = started.elapsed();
    db.execute("VACUUM ANALYZE").await?;
    eprintln!(
        "seeded {agents} agents and a history of jobs in {:.1} s, sealed their webhook secrets in {:.1} s, then VACUUM ANALYZE in {:.1} s",
        seeded.as_secs_f64(),
        (sealed - seeded).as_secs_f64(),
        (started.elapsed() - sealed).as_secs_f64()
    );
    Ok(())
}

/// `bench_pick_agents` and `bench_pick_clients` (n, id), numbered from 1
/// for pgbench's `random()`, and `bench_uuid_v7()` for the ids it makes;
/// returns how many of each.
pub(super) async fn create_pick_tables(database_url: &str) -> anyhow::Result<(i64, i64)> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute(
        "DROP TABLE IF EXISTS bench_pick_agents, bench_pick_clients;
         CREATE TABLE bench_pick_agents AS
             SELECT row_number() OVER () AS n, id FROM (SELECT id FROM agents WHERE active ORDER BY id LIMIT 500) a;
         CREATE TABLE bench_pick_clients AS
             SELECT row_number() OVER () AS n, id FROM (SELECT id FROM clients WHERE active ORDER BY id LIMIT 64) c;
         CREATE UNIQUE INDEX ON bench_pick_agents (n);
         CREATE UNIQUE INDEX ON bench_pick_clients (n);
         -- The ids the API makes for jobs, events and deliveries (shared/src/domain/ids.rs):
         -- UUIDv7, the Unix millisecond and then random bits.
         CREATE OR REPLACE FUNCTION bench_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
             SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                        PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
         $$;",
    )
    .await?;
    let counts: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM bench_pick_agents), (SELECT count(*) FROM bench_pick_clients)")
            .fetch_one(&mut db)
            .await?;
    if counts.0 == 0 || counts.1 == 0 {
        bail!("no agents or clients to create jobs between");
    }
    Ok(counts)
}

/// Seconds from now until no event is left unpublished; `None` in time
/// given up after five minutes.
pub(super) async fn wait_for_events_published(database_url: &str) -> anyhow::Result<Option<f64>> {
    let mut db = PgConnection::connect(database_url).await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        let unpublished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE published_at IS NULL").fetch_one(&mut db).await?;
        if unpublished == 0 {
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// Sets create-job's deliveries (its relay had nowhere to send them) aside
/// as dead, and as dead-lettered already: otherwise run 3's publisher would
/// publish every one of them to the dead-letter topic and mark it, in the
/// deliveries rounds and their ceilings (an earlier bench did: 8.4 kB of
/// WAL per delivery after three create-job rounds, against 4.6–5.1 kB).
pub(super) async fn set_aside_deliveries(database_url: &str) -> anyhow::Result<()> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute(
        "UPDATE webhook_deliveries SET status = 'dead', finished_at = now(), dead_lettered_at = now(),
                last_error = 'cargo xtask bench: set aside after the create-job scenario'
         WHERE status IN ('pending', 'dispatched')",
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::CEILING_DATABASE;

    #[test]
    fn the_ceiling_database_is_a_sibling_of_the_bench_database() {
        let url = "postgres://postgres@127.0.0.1:5432/agent_registry_bench?sslmode=disable";
        assert_eq!(
            database_url_named(url, CEILING_DATABASE).unwrap(),
            "postgres://postgres@127.0.0.1:5432/agent_registry_bench_ceiling?sslmode=disable"
        );
    }
}
