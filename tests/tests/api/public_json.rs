//! `agents.public_json`: each agent's public JSON as Postgres writes it
//! (migrations `20261207000001_agents_public_json` and
//! `20261207000005_agent_public_json_planned_once`), which public reads
//! send as stored. It must be, byte for byte, what serde writes for the
//! API's `PublicAgent` built from the same row: after an insert and after
//! every kind of change, for any text, number and time the columns hold.

use api::resources::agent::{self, AgentProfile, PublicAgent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use shared::domain::AgentId;
use sqlx::PgPool;
use tests::TestDatabase;
use uuid::Uuid;

/// Endpoint URLs as registration stores them (`url`'s serialization).
const URLS: [&str; 9] = [
    "https://agent.example.com/webhook",
    "http://127.0.0.1:18090/agents/1",
    "https://[2001:db8::1]:8443/hooks",
    "https://user:secret@hooks.example:8080/p?q=1#part",
    "https://bücher.example/",
    "https://EXAMPLE.com",
    "https://example.com?only=query",
    "https://trailing.example./a",
    "http://a@b@c.example/x",
];

/// Text with what JSON escapes (every control character, quotes,
/// backslashes), multi-byte characters and what it does not escape.
fn awkward_text(rng: &mut StdRng, max_chars: usize) -> String {
    const PIECES: [&str; 10] = ["\"", "\\", "/", "é", "😀", "\u{7f}", "\u{2028}", "<script>", "a b", "'"];
    let chars = rng.random_range(1..=max_chars);
    let mut text = String::new();
    while text.chars().count() < chars {
        match rng.random_range(0..3) {
            0 => text.push(char::from(rng.random_range(1_u8..0x20))),
            1 => text.push_str(PIECES[rng.random_range(0..PIECES.len())]),
            _ => text.push(char::from(rng.random_range(b'a'..=b'z'))),
        }
    }
    text.chars().take(chars).collect()
}

/// What serde writes for the agent's `PublicAgent`, its host as `url` reads it.
async fn serde_json_of(db: &PgPool, id: Uuid) -> String {
    let row = agent::find(db, AgentId::from_uuid(id)).await.unwrap().expect("the agent exists");
    let endpoint_host = url::Url::parse(&row.endpoint_url).unwrap().host_str().unwrap_or_default().to_owned();
    serde_json::to_string(&PublicAgent { profile: AgentProfile::from(row), endpoint_host }).unwrap()
}

/// What public reads send for the agent (`agent::find_public_json`).
async fn stored_json_of(db: &PgPool, id: Uuid) -> String {
    agent::find_public_json(db, AgentId::from_uuid(id)).await.unwrap().expect("the agent exists")
}

async fn assert_same_json(db: &PgPool, ids: &[Uuid], after: &str) {
    for id in ids {
        let (expected, stored) = (serde_json_of(db, *id).await, stored_json_of(db, *id).await);
        assert_eq!(stored, expected, "agent {id}, {after}");
    }
}

#[tokio::test]
async fn postgres_writes_each_agents_json_as_serde_does() {
    let database = TestDatabase::create().await;
    let db = PgPool::connect(&database.url).await.unwrap();
    let mut rng = StdRng::seed_from_u64(20261207);
    let mut ids = Vec::new();
    for n in 0..120 {
        let id = Uuid::new_v4();
        let stored_url = url::Url::parse(URLS[n % URLS.len()]).unwrap().to_string();
        let tags: Vec<String> = (0..rng.random_range(1..=4)).map(|t| format!("tag-{n}-{t}")).collect();
        // Every scale a price can have, and the edges.
        let price = match n % 4 {
            0 => "0".to_owned(),
            1 => "1000000".to_owned(),
            _ => {
                format!("{}.{:0width$}", rng.random_range(0..1_000_000), rng.random_range(0..10_u32.pow(6)), width = 6)
            }
        };
        // Whole seconds, and fractions with and without trailing zeros.
        let micros = [0, 100_000, 1, 123_456, 120_000][n % 5];
        sqlx::query(
            "INSERT INTO agents (id, name, description, capabilities, endpoint_url, public_key, price, webhook_secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, 'secret', '2026-12-07 02:20:12+00'::timestamptz + make_interval(secs => $8::float8 / 1e6))",
        )
        .bind(id)
        .bind(awkward_text(&mut rng, 100))
        .bind(if n % 7 == 0 { String::new() } else { awkward_text(&mut rng, 2000) })
        .bind(&tags)
        .bind(&stored_url)
        .bind(rng.random::<[u8; 32]>().to_vec())
        .bind(&price)
        .bind(f64::from(micros))
        .execute(&db)
        .await
        .unwrap();
        ids.push(id);
    }
    assert_same_json(&db, &ids, "as registered").await;

    // Every kind of change a writer makes, each in its own statement.
    let changes = [
        "UPDATE agents SET name = left(name, 90) || E'\\u0001\"', description = E'line\\nbreak\\t', updated_at = now()",
        "UPDATE agents SET capabilities = capabilities || ARRAY['extra.tag_1'], price = price / 3",
        "UPDATE agents SET rating = 4.75, rating_count = 12, uncounted_rating_count = 3, score = 3.181818",
        "UPDATE agents SET last_seen_at = now(), endpoint_disabled_at = now() - interval '1.5 seconds'",
        "UPDATE agents SET endpoint_url = 'https://moved.example:9443/new', endpoint_failing_since = now()",
        "UPDATE agents SET public_key = sha256(public_key)",
        "UPDATE agents SET active = false, deactivated_at = now(), rating = 0, score = 0",
    ];
    for change in changes {
        sqlx::query(sqlx::AssertSqlSafe(change)).execute(&db).await.unwrap();
        assert_same_json(&db, &ids, &format!("after {change}")).await;
    }

    // Whatever the writer's search_path: a pg_dump restore and logical
    // replication's apply (no triggers, hence the role) run with an empty one.
    let mut restore = db.begin().await.unwrap();
    for statement in [
        "SET LOCAL search_path = ''",
        "SET LOCAL session_replication_role = replica",
        "UPDATE public.agents SET last_seen_at = now() - interval '2 seconds'",
    ] {
        sqlx::query(statement).execute(&mut *restore).await.unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
    restore.commit().await.unwrap();
    assert_same_json(&db, &ids, "after a write with an empty search_path").await;
}

#[tokio::test]
async fn an_agents_public_read_and_its_discovery_entry_are_its_stored_json() {
    let app = tests::spawn_app().await;
    let agent = app.register_agent(json!({"capabilities": ["stored-json"]})).await;
    let id: AgentId = agent.registered["id"].as_str().unwrap().parse().unwrap();
    let stored = stored_json_of(&app.db, id.as_uuid()).await;
    let read = app.http.get(format!("{}{}", app.base_url, agent.path())).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.text().await.unwrap(), stored);
    let page = app.http.get(format!("{}/v1/agents?capabilities=stored-json", app.base_url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), format!(r#"{{"agents":[{stored}],"next_cursor":null}}"#));
}
