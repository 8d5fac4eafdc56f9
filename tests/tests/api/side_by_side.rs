//! The smoke run of the side-by-side bench (`cargo xtask bench --only
//! original`): on a few hundred agents, the FastAPI original answers every
//! discovery page (cursors followed) and every agent as the API does, and
//! both serve a second of the load generator's traffic, each request a 200.

use std::process::Command;

use serde_json::Value;
use sqlx::PgPool;
use tests::fastapi_original::FastApiOriginal;
use tests::spawn_app;

const AGENTS: i32 = 600;

/// Each sort, tag walks (a common tag, two tags, a rare one, with a rating
/// or price bound), text within a tag and without one; small pages, so
/// `same-answers` follows their cursors.
const QUERIES: [&str; 10] = [
    "capabilities=translation&limit=5",
    "capabilities=code-review&min_rating=4&limit=5",
    "capabilities=translation,legal&sort=rating&limit=5",
    "capabilities=skill-7&limit=5",
    "q=invoices&capabilities=finance&limit=5",
    "capabilities=summarization&sort=price&limit=5",
    "capabilities=data-extraction&max_price=20&sort=price&limit=5",
    "capabilities=image-captioning&sort=newest&limit=5",
    "q=invoices&sort=newest&limit=5",
    "sort=price&limit=5",
];

#[tokio::test]
async fn the_fastapi_original_answers_as_the_api_does_and_both_serve_the_load() {
    let app = spawn_app().await; // the page cache is off in tests
    seed(&app.db).await;
    let original = FastApiOriginal::start(&app.database).await;

    let mut compare = vec!["same-answers", "--url", &app.base_url, "--original-url", &original.base_url];
    compare.extend(QUERIES.iter().flat_map(|query| ["--query", *query]));
    let compared = load(&compare).await;
    assert!(compared["pages"].as_u64().unwrap() > QUERIES.len() as u64, "cursors were followed: {compared}");
    assert!(compared["agents"].as_u64().unwrap() >= 40, "{compared}");
    assert_eq!(compared["differences"], 0, "{compared}");

    for url in [&app.base_url, &original.base_url] {
        let mut discovery = vec!["discovery", "--url", url, "--seconds", "1", "--connections", "4"];
        discovery.extend(QUERIES.iter().flat_map(|query| ["--query", *query]));
        let get_agent =
            ["get-agent", "--url", url, "--ids-from", &app.base_url, "--seconds", "1", "--connections", "4"];
        for report in [load(&discovery).await, load(&get_agent).await] {
            assert!(report["count"].as_u64().unwrap() > 0, "{report}");
            assert_eq!(report["errors"], 0, "every request answered 200: {report}\n{}", original.log_text());
        }
    }
}

/// Runs the bench's load generator; its JSON line, after it succeeded.
async fn load(args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_load"));
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("the load generator runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "load {args:?} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("the load generator prints JSON")
}

/// Agents as the bench seeds them, fewer: six primary tags, eight secondary
/// ones, 50 rare `skill-N`; spread prices, ratings and ages; many agents
/// unrated, so equal scores are ordered by id.
async fn seed(db: &PgPool) {
    sqlx::query(
        "INSERT INTO agents (id, name, description, capabilities, endpoint_url, public_key, price, rating,
                             rating_count, rating_sum, score, webhook_secret, created_at, updated_at)
         SELECT gen_random_uuid(), 'Agent ' || i,
                (ARRAY['Translates documents.', 'Summarises reports.', 'Reviews code.',
                       'Extracts tables and fields from invoices.', 'Writes captions for images.',
                       'Answers questions.'])[1 + i % 6] || ' Agent number ' || i || '.',
                ARRAY[(ARRAY['translation', 'summarization', 'code-review', 'data-extraction',
                             'image-captioning', 'question-answering'])[1 + i % 6],
                      (ARRAY['legal', 'finance', 'medical', 'marketing', 'education', 'support',
                             'research', 'gaming'])[1 + (i / 6) % 8],
                      'skill-' || (i % 50)],
                'https://agent-' || i || '.example.com/hooks?token=secret',
                decode(lpad(to_hex(i), 64, '0'), 'hex'),
                1 + (i * 7919 % 10000) / 100.0,
                CASE WHEN count = 0 THEN 0 ELSE round(sum::numeric / count, 2) END, count, sum,
                reputation_score(sum, count),
                'whsec_' || encode(sha256(int4send(i)), 'base64'),
                now() - make_interval(mins => i), now()
         FROM generate_series(1, $1) AS i,
              LATERAL (SELECT (i * 31) % 200 * (i % 3) AS count) AS counted,
              LATERAL (SELECT (count * (100 + i * 104729 % 401) / 100)::integer AS sum) AS summed",
    )
    .bind(AGENTS)
    .execute(db)
    .await
    .expect("the agents are seeded");
    sqlx::query("ANALYZE agent_tags").execute(db).await.expect("agent_tags is analysed");
}
