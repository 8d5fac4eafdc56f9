//! Discovery: each filter, each sort, and pages that add up to the whole.

use std::collections::HashSet;

use serde_json::{Value, json};
use tests::{TestApp, spawn_app, spawn_app_with};

/// Registers agents as (name, capabilities, price, rating, description);
/// ratings are set directly, as ten rated jobs with that mean would (so the
/// reputation score orders them as their means).
async fn seed(app: &TestApp, agents: &[(&str, &[&str], &str, &str, &str)]) {
    for (name, capabilities, price, rating, description) in agents {
        let agent = app
            .register_agent(
                json!({"name": name, "capabilities": capabilities, "price": price, "description": description}),
            )
            .await;
        let id: shared::domain::AgentId = agent.registered["id"].as_str().unwrap().parse().unwrap();
        sqlx::query(
            "UPDATE agents SET rating = $1::numeric, rating_count = 10, rating_sum = round($1::numeric * 10),
                               score = reputation_score(round($1::numeric * 10)::integer, 10)
             WHERE id = $2",
        )
        .bind(rating)
        .bind(id.as_uuid())
        .execute(&app.db)
        .await
        .unwrap();
    }
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let response = app.get(&format!("/v1/agents?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    let page: Value = response.json().await.unwrap();
    page["agents"].as_array().unwrap().iter().map(|agent| agent["name"].as_str().unwrap().to_owned()).collect()
}

async fn catalogue() -> TestApp {
    let app = spawn_app().await;
    seed(
        &app,
        &[
            ("Polyglot", &["translation", "summarization"], "12.50", "4.80", "Translates legal documents"),
            ("Babel", &["translation"], "3.00", "3.90", "Cheap machine translation"),
            ("Scribe", &["summarization"], "7.25", "4.20", "Summarizes meeting transcripts"),
            ("Auditor", &["code.review", "security"], "40", "5.00", "Reviews Rust code for security bugs"),
            ("Retired", &["translation"], "1.00", "5.00", "Deactivated below"),
        ],
    )
    .await;
    sqlx::query("UPDATE agents SET active = false WHERE name = 'Retired'").execute(&app.db).await.unwrap();
    app
}

#[tokio::test]
async fn each_filter_narrows_the_results() {
    let app = catalogue().await;
    assert_eq!(names(&app, "").await, ["Auditor", "Polyglot", "Scribe", "Babel"], "inactive agents never show");
    assert_eq!(names(&app, "capabilities=translation").await, ["Polyglot", "Babel"]);
    assert_eq!(names(&app, "capabilities=translation,summarization").await, ["Polyglot"], "all tags must match");
    assert_eq!(names(&app, "capabilities=Translation").await, ["Polyglot", "Babel"], "tags are case-insensitive");
    assert_eq!(names(&app, "capabilities=cooking").await, Vec::<String>::new());
    assert_eq!(names(&app, "q=translation").await, ["Polyglot", "Babel"], "stemmed: translates ~ translation");
    assert_eq!(names(&app, "q=rust%20security").await, ["Auditor"]);
    assert_eq!(names(&app, "max_price=7.25").await, ["Scribe", "Babel"], "max_price is inclusive");
    assert_eq!(names(&app, "min_rating=4.2").await, ["Auditor", "Polyglot", "Scribe"], "min_rating is inclusive");
    assert_eq!(names(&app, "capabilities=translation&max_price=10&min_rating=3").await, ["Babel"]);
}

#[tokio::test]
async fn each_sort_order() {
    let app = catalogue().await;
    assert_eq!(names(&app, "sort=rating").await, ["Auditor", "Polyglot", "Scribe", "Babel"]);
    assert_eq!(names(&app, "sort=price").await, ["Babel", "Scribe", "Polyglot", "Auditor"]);
    assert_eq!(names(&app, "sort=newest").await, ["Auditor", "Scribe", "Babel", "Polyglot"]);
}

/// Walks every page of `query` with the given page size.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page: Value = app.get(&format!("/v1/agents?{query}&limit={limit}{after}")).await.json().await.unwrap();
        let agents = page["agents"].as_array().unwrap();
        assert!(agents.len() <= limit);
        seen.extend(agents.iter().map(|agent| agent["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
        assert!(seen.len() < 1_000, "pagination terminates");
    }
}

#[tokio::test]
async fn pages_add_up_to_the_whole_result_in_order_for_every_sort() {
    let app = spawn_app().await;
    // Ties on every sort key, so the id tie-breaker is exercised.
    let agents: Vec<(String, &[&str], String, String)> = (0..23)
        .map(|i| (format!("Agent {i}"), &["paging"][..], format!("{}.00", i % 4), format!("{}.50", i % 3)))
        .collect();
    for (name, capabilities, price, rating) in &agents {
        seed(&app, &[(name, capabilities, price, rating, "")]).await;
    }
    for sort in ["rating", "price", "newest"] {
        let query = format!("capabilities=paging&sort={sort}");
        let whole = all_pages(&app, &query, 100).await;
        assert_eq!(whole.len(), 23);
        for limit in [1, 5, 7] {
            let paged = all_pages(&app, &query, limit).await;
            assert_eq!(paged, whole, "sort={sort} limit={limit}");
        }
        assert_eq!(whole.iter().collect::<HashSet<_>>().len(), 23, "no duplicates");
    }
    let default_page: Value = app.get("/v1/agents").await.json().await.unwrap();
    assert_eq!(default_page["agents"].as_array().unwrap().len(), 20, "default page size");
}

/// Searches by several tags walk the rarest tag's index (chosen from the
/// table statistics) and check the others; any order of the tags gives the
/// same agents, and a change to an agent shows in the next search.
#[tokio::test]
async fn multi_tag_searches_agree_whichever_tag_is_walked_and_follow_changes() {
    let app = spawn_app().await;
    for i in 0..12 {
        let tags: &[&str] = if i % 4 == 0 { &["common", "rare"] } else { &["common"] };
        seed(&app, &[(&format!("Agent {i}"), tags, "5.00", &format!("{}.00", i % 5), "")]).await;
    }
    sqlx::query("ANALYZE agent_tags").execute(&app.db).await.unwrap();
    let both = names(&app, "capabilities=common,rare").await;
    assert_eq!(both, ["Agent 4", "Agent 8", "Agent 0"], "best rated first");
    assert_eq!(names(&app, "capabilities=rare,common").await, both);
    assert_eq!(names(&app, "capabilities=rare,common&sort=price").await.len(), 3);

    let update = |sql: &'static str| sqlx::query(sql).execute(&app.db);
    update("UPDATE agents SET capabilities = '{common}' WHERE name = 'Agent 0'").await.unwrap();
    assert_eq!(names(&app, "capabilities=common,rare").await, ["Agent 4", "Agent 8"], "tags changed");
    update("UPDATE agents SET price = 50 WHERE name = 'Agent 4'").await.unwrap();
    assert_eq!(names(&app, "capabilities=rare&max_price=10").await, ["Agent 8"], "price changed");
    update("UPDATE agents SET rating = 1, rating_sum = 10, score = reputation_score(10, 10) WHERE name = 'Agent 4'")
        .await
        .unwrap();
    assert_eq!(names(&app, "capabilities=rare").await, ["Agent 8", "Agent 4"], "rating and score changed");
    update("UPDATE agents SET active = false WHERE name = 'Agent 8'").await.unwrap();
    assert_eq!(names(&app, "capabilities=rare").await, ["Agent 4"], "deactivated");
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM agent_tags").fetch_one(&app.db).await.unwrap();
    assert_eq!(rows, 11 + 1, "a row per tag of each active agent: 11 with common, Agent 4 with rare");
}

/// `agent_tags` is rewritten for an agent only when one of its tag fields
/// changed: a heartbeat and the worker's record of a delivered webhook (an
/// update of `agents` that matches no row) call no trigger at all, and after
/// every kind of write the tag rows are exactly those the agents give.
#[tokio::test]
async fn agent_tags_are_rewritten_only_for_agents_whose_tag_fields_changed() {
    let app = spawn_app().await;
    seed(
        &app,
        &[("Tagged", &["alpha", "beta"], "5.00", "4.00", "first words"), ("Other", &["beta"], "7.00", "3.00", "")],
    )
    .await;
    // The trigger's calls (`track_functions` counts them), and whether the tags are exact after.
    let trigger_calls = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            // Counted before and after: the counts a connection has not yet
            // reported include its earlier transactions'.
            let count = "SELECT COALESCE(pg_stat_get_xact_function_calls('agent_tags_update'::regproc), 0)";
            let mut tx = db.begin().await.unwrap();
            sqlx::query("SET LOCAL track_functions = 'pl'").execute(&mut *tx).await.unwrap();
            let (before,): (i64,) = sqlx::query_as(count).fetch_one(&mut *tx).await.unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            let (after,): (i64,) = sqlx::query_as(count).fetch_one(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            let (differences,): (i64,) = sqlx::query_as(
                "WITH expected AS (
                     SELECT DISTINCT tag, id AS agent_id, rating, score, price, created_at, capabilities, search
                     FROM agents, unnest(capabilities) AS tag WHERE active
                 ), kept AS (
                     SELECT tag, agent_id, rating, score, price, created_at, capabilities, search FROM agent_tags
                 )
                 SELECT count(*) FROM ((TABLE expected EXCEPT TABLE kept) UNION ALL (TABLE kept EXCEPT TABLE expected)) d",
            )
            .fetch_one(&db)
            .await
            .unwrap();
            assert_eq!(differences, 0, "agent_tags after {sql}");
            after - before
        }
    };
    let healthy =
        "UPDATE agents SET endpoint_failing_since = NULL WHERE name = 'Tagged' AND endpoint_failing_since IS NOT NULL";
    let writes = [
        ("UPDATE agents SET last_seen_at = now() WHERE name = 'Tagged'", 0, "a heartbeat"),
        (healthy, 0, "the worker's record of a delivery"),
        ("UPDATE agents SET price = price WHERE name IN ('Tagged', 'Other')", 0, "a tag field set to what it was"),
        ("UPDATE agents SET price = 6 WHERE name = 'Tagged'", 1, "a new price"),
        ("UPDATE agents SET rating = 2 WHERE name = 'Tagged'", 1, "a new rating alone"),
        ("UPDATE agents SET score = score / 2 WHERE name = 'Tagged'", 1, "a new score alone"),
        ("UPDATE agents SET created_at = created_at - interval '1 day' WHERE name = 'Tagged'", 1, "a creation time"),
        ("UPDATE agents SET description = 'other words' WHERE name IN ('Tagged', 'Other')", 2, "new words to search"),
        ("UPDATE agents SET active = false WHERE name = 'Other'", 1, "a deactivation"),
        ("UPDATE agents SET capabilities = capabilities || '{gamma}' WHERE name IN ('Tagged', 'Other')", 2, "new tags"),
        ("UPDATE agents SET active = true, capabilities = '{beta,delta,beta}' WHERE name = 'Other'", 1, "reactivated"),
        ("UPDATE agents SET price = CASE name WHEN 'Tagged' THEN 8 ELSE price END", 1, "a batch where one row changes"),
    ];
    for (sql, calls, what) in writes {
        assert_eq!(trigger_calls(sql).await, calls, "{what}");
    }
    assert_eq!(names(&app, "capabilities=gamma").await, ["Tagged"]);
    assert_eq!(names(&app, "capabilities=delta").await, ["Other"]);
}

/// ARCHITECTURE's invariant: Postgres fires a statement-level `UPDATE`
/// trigger for every `UPDATE` of its table, even one matching no row, so on
/// the tables the hot path updates the only ones are the guards that refuse
/// a change of `id` (and fire only for a statement that sets it).
#[tokio::test]
async fn no_statement_trigger_runs_for_every_update_of_a_hot_table() {
    let app = spawn_app().await;
    let offenders: Vec<String> = sqlx::query_scalar(
        "SELECT t.tgrelid::regclass || '.' || t.tgname FROM pg_trigger t
         WHERE NOT t.tgisinternal
           AND t.tgrelid = ANY ('{agents,clients,jobs,events,webhook_deliveries,delivery_attempts,endpoint_health}'::regclass[])
           AND t.tgtype & 1 = 0 AND t.tgtype & 16 <> 0
           AND NOT (t.tgfoid = 'refuse_removal'::regproc
                    AND array_length(t.tgattr::int2[], 1) = 1
                    AND t.tgattr[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = t.tgrelid AND attname = 'id'))",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(offenders.is_empty(), "statement-level UPDATE triggers on hot tables: {offenders:?}");
}

#[tokio::test]
async fn a_page_is_served_from_the_cache_for_at_most_its_ttl() {
    let app = spawn_app_with(|source, _| source.set("PUBLIC_READ_CACHE_MS", "2000")).await;
    seed(&app, &[("First", &["cached"], "10", "4.0", "")]).await;
    // A page is kept on its second sighting (the doorkeeper): asked twice.
    for _ in 0..2 {
        assert_eq!(names(&app, "capabilities=cached").await, ["First"]);
    }
    seed(&app, &[("Second", &["cached"], "10", "3.0", "")]).await;
    assert_eq!(names(&app, "capabilities=cached").await, ["First"], "the same query within the TTL: the cached page");
    assert_eq!(names(&app, "capabilities=cached&sort=price").await.len(), 2, "another query: a page of its own");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(names(&app, "capabilities=cached").await, ["First", "Second"], "fresh once the TTL is over");
    let cache_status = |response: reqwest::Response| response.headers()["cache-status"].to_str().unwrap().to_owned();
    let limit_7 = || app.get("/v1/agents?capabilities=cached&limit=7");
    assert_eq!(cache_status(limit_7().await), "agent-registry; fwd=miss", "first sighting: not kept");
    assert_eq!(cache_status(limit_7().await), "agent-registry; fwd=miss", "second sighting: kept");
    assert_eq!(cache_status(limit_7().await), "agent-registry; hit");
}

#[tokio::test]
async fn the_discovery_pool_plans_once_and_the_main_pool_per_request() {
    let database = tests::TestDatabase::create().await;
    let settings = tests::settings(&database, &tests::redis_url(), |_| {});
    let mode = |plans| {
        let pool = shared::db::lazy_pool(&settings, 1, plans).expect("the URL parses");
        async move {
            let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&pool).await.unwrap();
            pool.close().await;
            mode
        }
    };
    assert_eq!(mode(shared::db::Plans::Generic).await, "force_generic_plan");
    assert_eq!(mode(shared::db::Plans::Chosen).await, "auto");
}

#[tokio::test]
async fn tag_walks_without_text_run_on_the_generic_plans_pool() {
    let app = spawn_app().await;
    seed(&app, &[("Lingo", &["translation", "legal"], "5.00", "4.5", "Contracts and invoices.")]).await;
    // The pool connects lazily: only what ran on it shows there.
    let on_generic_plans = || async {
        let queries: Vec<String> = sqlx::query_scalar(
            "SELECT query FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'agent-registry generic plans'",
        )
        .fetch_all(&app.db)
        .await
        .unwrap();
        queries.iter().filter(|query| query.contains("agent_tags t JOIN agents")).count()
    };
    assert_eq!(names(&app, "capabilities=legal&q=invoices").await, ["Lingo"]);
    assert_eq!(on_generic_plans().await, 0, "a search with text plans per request, on the main pool");
    assert_eq!(names(&app, "capabilities=translation,legal&sort=price").await, ["Lingo"]);
    assert_eq!(on_generic_plans().await, 1, "a tag walk without text runs on the generic plans pool");
}

#[tokio::test]
async fn discovery_connections_must_leave_some_to_the_rest() {
    let database = tests::TestDatabase::create().await;
    let settings = tests::settings(&database, &tests::redis_url(), |source| {
        source.set("DATABASE_MAX_CONNECTIONS", "3");
        source.set("DISCOVERY_DATABASE_CONNECTIONS", "3");
    });
    let error = api::startup::Application::build(settings).await.err().expect("start-up fails").to_string();
    assert!(error.contains("DISCOVERY_DATABASE_CONNECTIONS (3) must be below DATABASE_MAX_CONNECTIONS (3)"), "{error}");
}

#[tokio::test]
async fn discovery_sharing_the_pool_finds_the_same_agents() {
    let app = spawn_app_with(|source, _| source.set("DISCOVERY_DATABASE_CONNECTIONS", "0")).await;
    seed(
        &app,
        &[
            ("Lingo", &["translation", "legal"], "5.00", "4.5", "Contracts."),
            ("Babel", &["translation"], "2.00", "3.0", "Anything."),
            ("Scribe", &["summarization"], "1.00", "5.0", "Briefs."),
        ],
    )
    .await;
    assert_eq!(names(&app, "capabilities=translation").await, ["Lingo", "Babel"]);
    assert_eq!(names(&app, "capabilities=translation,legal&sort=price").await, ["Lingo"]);
}
