//! Ratings and reputation: a client rates a finished job once, the agent's
//! mean, count and score follow in the same transaction with an event and a
//! webhook; discovery ranks by the shrunk score; anyone pages through an
//! agent's ratings; a changed prior rescores every agent. (What does not
//! count, and how much each client weighs: `reputation.rs`.)

use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::settings::ReputationPrior;
use tests::pipeline::spawn_pipeline;
use tests::{Method, RequestSigner, TestAgent, TestApp, eventually, expect_status, spawn_app};

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

async fn rate(app: &TestApp, client: &RequestSigner, job: &Value, body: &Value) -> reqwest::Response {
    app.signed(client, Method::POST, &format!("/v1/jobs/{}/rating", id(job)), body).await
}

/// Backdates the client's registration a year: its weight is then its
/// distinct paid counterparties over five (docs/API.md, "Reputation").
async fn aged(app: &TestApp, client: &Value) {
    let id = uuid::Uuid::parse_str(&id(client)[4..]).unwrap();
    sqlx::query("UPDATE clients SET created_at = now() - interval '1 year' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
}

async fn agent_now(app: &TestApp, agent: &TestAgent) -> Value {
    // Past the public-read cache of another request, if any.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    expect_status(app.get(&agent.path()).await, 200).await
}

#[tokio::test]
async fn a_client_rates_a_finished_job_once_and_the_agent_hears_of_it() {
    let pipeline = spawn_pipeline().await;
    let app = &pipeline.app;
    let agent = pipeline.agent().await;
    let (client, registered) = pipeline.client().await;
    aged(app, &registered).await; // Weight 0.2: a year old, one paid counterparty (this agent).
    let (stranger, _) = pipeline.client().await;

    let pending = app.hire(&client, &agent).await;
    let problem = expect_status(rate(app, &client, &pending, &json!({"score": 5})).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("pending"), "{problem}");

    let job = app.completed_job(&client, &agent, &json!({"text": "Hello"})).await;
    let by_agent = rate(app, &agent.signer, &job, &json!({"score": 5})).await;
    expect_status(by_agent, 403).await;
    expect_status(rate(app, &stranger, &job, &json!({"score": 1})).await, 404).await;
    for (bad, field) in [
        (json!({"score": 6}), "score"),
        (json!({"score": 0}), "score"),
        (json!({"score": 4, "comment": "x".repeat(1001)}), "comment"),
        (json!({"score": 4, "comment": "   "}), "comment"),
        (json!({"score": 4, "stars": 4}), "stars"),
    ] {
        let problem = expect_status(rate(app, &client, &job, &bad).await, 422).await;
        assert!(problem.to_string().contains(field), "{bad} → {problem}");
    }

    let rated = expect_status(rate(app, &client, &job, &json!({"score": 4, "comment": " Fast. "})).await, 201).await;
    assert_eq!((rated["score"].as_i64(), rated["comment"].as_str()), (Some(4), Some("Fast.")));
    assert_eq!(rated["job_id"], job["id"]);
    let again = expect_status(rate(app, &client, &job, &json!({"score": 5})).await, 409).await;
    assert!(again["detail"].as_str().unwrap().contains("already rated"), "{again}");

    // A failed job can be rated too; with a thousand characters of comment.
    let failed = app.hire(&client, &agent).await;
    let fail = format!("/v1/jobs/{}/fail", id(&failed));
    expect_status(app.signed(&agent.signer, Method::POST, &fail, &json!({"reason": "scan unreadable"})).await, 200)
        .await;
    let long = json!({"score": 1, "comment": "é".repeat(1000)});
    expect_status(rate(app, &client, &failed, &long).await, 201).await;

    let standing = agent_now(app, &agent).await;
    assert_eq!((standing["rating"].as_str(), standing["rating_count"].as_i64()), (Some("2.50"), Some(2)));
    assert_eq!(standing["score"], "2.990196", "one client, its mean 2.5 at weight 0.2: (10 × 3 + 0.2 × 2.5) / 10.2");

    let events: Vec<Value> = sqlx::query_scalar("SELECT data FROM events WHERE type = 'job.rated' ORDER BY position")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["job_id"], job["id"]);
    assert_eq!(events[0]["client_id"], job["client_id"]);
    let standing = json!({"rating": "4.00", "rating_count": 1, "uncounted_rating_count": 0, "score": "3.019608"});
    assert_eq!(events[0]["agent"], standing, "(10 × 3 + 0.2 × 4) / 10.2");
    assert_eq!((events[0]["counted"].as_bool(), events[0]["weight"].as_str()), (Some(true), Some("0.2")));
    assert_eq!(events[1]["agent"]["rating_count"], 2);

    // The agent's endpoint gets both as webhooks.
    let rated_webhooks = |received: &[tests::pipeline::Received]| {
        received.iter().filter(|webhook| webhook.path == "/agent" && webhook.json()["type"] == "job.rated").count()
    };
    assert!(eventually(20, || async { rated_webhooks(&pipeline.receiver.received()) == 2 }).await);
    let webhook = pipeline.receiver.received().into_iter().find(|webhook| webhook.json()["type"] == "job.rated");
    assert_eq!(webhook.unwrap().json()["data"]["score"], 4);
}

#[tokio::test]
async fn one_five_star_rating_does_not_outrank_many_near_five() {
    let app = spawn_app().await;
    let lucky = app.register_agent(json!({"name": "Lucky", "capabilities": ["translation", "legal"]})).await;
    let steady = app.register_agent(json!({"name": "Steady", "capabilities": ["translation", "legal"]})).await;
    let unrated = app.register_agent(json!({"name": "Unrated", "capabilities": ["translation", "legal"]})).await;

    // Each by an aged client with one paid counterparty: weight 0.2 each.
    for (agent, score) in [(&lucky, 5)].into_iter().chain([5, 5, 5, 5, 4, 5, 5, 5, 5, 4].map(|score| (&steady, score)))
    {
        let (client, registered) = app.register_client().await;
        aged(&app, &registered).await;
        let job = app.completed_job(&client, agent, &json!({"text": "Hello"})).await;
        expect_status(rate(&app, &client, &job, &json!({"score": score})).await, 201).await;
    }

    let lucky_now = agent_now(&app, &lucky).await;
    let steady_now = agent_now(&app, &steady).await;
    assert_eq!((lucky_now["rating"].as_str(), lucky_now["score"].as_str()), (Some("5.00"), Some("3.039216")));
    assert_eq!((steady_now["rating"].as_str(), steady_now["score"].as_str()), (Some("4.80"), Some("3.300000")));

    // Untagged (the agents table's score index) and tagged (agent_tags), in pages of one.
    for query in ["/v1/agents?limit=1", "/v1/agents?capabilities=legal,translation&limit=1"] {
        let mut names = Vec::new();
        let mut path = query.to_owned();
        loop {
            let page = expect_status(app.get(&path).await, 200).await;
            names.extend(page["agents"].as_array().unwrap().iter().map(|agent| agent["name"].clone()));
            let Some(cursor) = page["next_cursor"].as_str() else { break };
            path = format!("{query}&cursor={cursor}");
        }
        assert_eq!(names, ["Steady", "Lucky", "Unrated"], "{query}");
    }
    let picky = expect_status(app.get("/v1/agents?min_rating=4.9").await, 200).await;
    assert_eq!(picky["agents"][0]["name"], "Lucky", "min_rating filters on the plain mean");
    assert_eq!(picky["agents"].as_array().unwrap().len(), 1);
    let unrated_now = agent_now(&app, &unrated).await;
    assert_eq!(unrated_now["score"], "3.000000", "no ratings: the prior's mean");
}

#[tokio::test]
async fn an_agents_ratings_page_newest_first() {
    let app = spawn_app().await;
    let (client, _) = app.register_client().await;
    let agent = app.register_agent(json!({})).await;
    let mut rated = Vec::new();
    for score in 1..=5 {
        let job = app.completed_job(&client, &agent, &json!({"text": "Hello"})).await;
        expect_status(rate(&app, &client, &job, &json!({"score": score, "comment": format!("#{score}")})).await, 201)
            .await;
        rated.push(job["id"].clone());
    }

    let base = format!("{}/ratings?limit=2", agent.path());
    let mut seen = Vec::new();
    let mut path = base.clone();
    let mut pages = 0;
    loop {
        let page = expect_status(app.get(&path).await, 200).await;
        pages += 1;
        for rating in page["ratings"].as_array().unwrap() {
            assert!(rating.get("client_id").is_none(), "raters are not public: {rating}");
            seen.push(rating["job_id"].clone());
        }
        let Some(cursor) = page["next_cursor"].as_str() else { break };
        path = format!("{base}&cursor={cursor}");
    }
    rated.reverse();
    assert_eq!((pages, seen), (3, rated), "newest first, each once");

    let unknown = "/v1/agents/agt_00000000000000000000000000000000/ratings";
    expect_status(app.get(unknown).await, 404).await;
    let fresh = app.register_agent(json!({})).await;
    let empty = expect_status(app.get(&format!("{}/ratings", fresh.path())).await, 200).await;
    assert_eq!(empty, json!({"ratings": [], "next_cursor": null}));
    for bad in ["limit=0", "limit=101", "cursor=nonsense"] {
        expect_status(app.get(&format!("{}/ratings?{bad}", agent.path())).await, 422).await;
    }
    let jobs_cursor = format!("{}/ratings?cursor=am9iczoxOjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw", agent.path());
    expect_status(app.get(&jobs_cursor).await, 422).await;
}

/// `RATING_MIN_PRICE` as the test app has it (the default).
fn app_min_price() -> shared::domain::Price {
    "1.00".parse().unwrap()
}

#[tokio::test]
async fn a_changed_prior_rescores_every_agent_and_later_ratings_use_it() {
    let app = spawn_app().await;
    let (client, registered) = app.register_client().await;
    aged(&app, &registered).await;
    let agent = app.register_agent(json!({})).await;
    let job = app.completed_job(&client, &agent, &json!({"text": "Hello"})).await;
    expect_status(rate(&app, &client, &job, &json!({"score": 5})).await, 201).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(app.register_agent(json!({})).await);
    }

    let prior = ReputationPrior { weight: Decimal::ONE, mean: Decimal::from(2) };
    let min_price = app_min_price();
    let rescored = api::background::reputation::follow_settings(&app.db, prior, min_price).await.unwrap();
    assert_eq!(rescored, 4, "every agent moved: the rated one and the three unrated");
    assert_eq!(agent_now(&app, &agent).await["score"], "2.500000", "(1 × 2 + 0.2 × 5) / (1 + 0.2)");
    for other in &others {
        assert_eq!(agent_now(&app, other).await["score"], "2.000000");
    }
    assert_eq!(
        api::background::reputation::follow_settings(&app.db, prior, min_price).await.unwrap(),
        0,
        "the same prior changes nothing"
    );

    let second = app.completed_job(&client, &agent, &json!({"text": "Hello"})).await;
    expect_status(rate(&app, &client, &second, &json!({"score": 2})).await, 201).await;
    assert_eq!(agent_now(&app, &agent).await["score"], "2.250000", "its mean 3.5: (1 × 2 + 0.2 × 3.5) / (1 + 0.2)");
    let newcomer = app.register_agent(json!({})).await;
    assert_eq!(agent_now(&app, &newcomer).await["score"], "2.000000", "a new agent starts at the prior's mean");
    let sorted = expect_status(app.get("/v1/agents?limit=1").await, 200).await;
    assert_eq!(sorted["agents"][0]["id"], agent.registered["id"]);
}
