//! Webhook secrets are sealed at rest (`shared::sealing`): no row of any
//! table holds a `whsec_` in plaintext, rows from before are sealed by the
//! one-shot step, and webhooks still verify with the secret the recipient
//! was given.

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::progress::Report;
use shared::sealing::{Sealer, seal_legacy_secrets};
use sqlx::PgPool;
use standardwebhooks::Webhook;
use tests::kms::KmsStandIn;
use tests::pipeline::{PipelineOptions, spawn_pipeline, spawn_pipeline_with};
use tests::{Method, TestApp, spawn_app};

/// Rows, in any table of the schema, whose text holds a plaintext secret.
async fn plaintext_secrets(db: &PgPool) -> Vec<String> {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_all(db)
            .await
            .unwrap();
    assert!(tables.len() > 5, "{tables:?}");
    let mut found = Vec::new();
    for table in tables {
        // Table names come from the catalog, not input.
        let query = format!(r#"SELECT t::text FROM "{table}" t WHERE t::text LIKE '%whsec\_%'"#);
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(query)).fetch_all(db).await.unwrap();
        found.extend(rows.into_iter().map(|row| format!("{table}: {row}")));
    }
    found
}

/// What `api migrate` builds: a sealer of its own, with the deployment's key.
async fn migrate_sealer(app: &TestApp) -> Sealer {
    Sealer::from_settings(&tests::settings(&app.database, &tests::redis_url(), |_| {})).await.unwrap()
}

#[tokio::test]
async fn no_row_holds_a_webhook_secret_in_plaintext() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    app.register_agent(json!({})).await;
    let (client, _) = app.register_client().await;
    app.register_client().await;
    let rotate = format!("{}/webhook-secret", agent.path());
    for _ in 0..2 {
        assert_eq!(app.signed(&agent.signer, Method::POST, &rotate, &json!({})).await.status(), 200);
    }
    let job = json!({"agent_id": agent.registered["id"], "input": {}, "price": "10", "callback_url": "https://acme.example.com/cb"});
    assert_eq!(app.signed(&client, Method::POST, "/v1/jobs", &job).await.status(), 201);

    assert_eq!(plaintext_secrets(&app.db).await, Vec::<String>::new());
    let sealed: (i64, i64) =
        sqlx::query_as("SELECT count(webhook_secret_sealed), count(previous_webhook_secret_sealed) FROM agents")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(sealed, (2, 1), "both agents' secrets and the rotated one's previous, sealed");
}

#[tokio::test]
async fn plaintext_rows_from_before_are_sealed_once_and_still_open() {
    let app = spawn_app().await;
    let agent = app.register_agent(json!({})).await;
    let (_, client) = app.register_client().await;
    let (agent_secret, client_secret) =
        ("whsec_b2xkIGFnZW50IHNlY3JldCwgMjQgYnl0ZXM=", "whsec_b2xkIGNsaWVudCBzZWNyZXQsIDI0IGJ5dGVz");
    // As rows were stored before secrets were sealed.
    sqlx::query(
        "UPDATE agents SET webhook_secret = $1, webhook_secret_sealed = NULL,
             previous_webhook_secret = $1, previous_webhook_secret_expires_at = now() + interval '1 day'",
    )
    .bind(agent_secret)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("UPDATE clients SET webhook_secret = $1, webhook_secret_sealed = NULL")
        .bind(client_secret)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(plaintext_secrets(&app.db).await.len(), 2, "the scan finds plaintext");

    let sealer = migrate_sealer(&app).await;
    assert_eq!(seal_legacy_secrets(&app.db, &sealer, usize::MAX, Report::Quiet).await.unwrap(), 2);
    assert_eq!(plaintext_secrets(&app.db).await, Vec::<String>::new());
    assert_eq!(seal_legacy_secrets(&app.db, &sealer, usize::MAX, Report::Quiet).await.unwrap(), 0, "idempotent");

    // The worker (another process, the same key) opens them for their owners.
    let worker = migrate_sealer(&app).await;
    let (current, previous): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT webhook_secret_sealed, previous_webhook_secret_sealed FROM agents")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let owner = agent.registered["id"].as_str().unwrap();
    assert_eq!(worker.open(&current, owner).await.unwrap().expose_secret(), agent_secret);
    assert_eq!(worker.open(&previous, owner).await.unwrap().expose_secret(), agent_secret);
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT webhook_secret_sealed FROM clients").fetch_one(&app.db).await.unwrap();
    assert_eq!(worker.open(&sealed, client["id"].as_str().unwrap()).await.unwrap().expose_secret(), client_secret);
    assert!(worker.open(&sealed, owner).await.is_err(), "sealed for its own row only");
}

#[tokio::test]
async fn webhooks_of_a_migrated_agent_verify_with_its_old_secret() {
    let pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let secret = "whsec_bWlncmF0ZWQgZnJvbSBwbGFpbnRleHQsIDMyIGJ5dGVzIQ==";
    sqlx::query("UPDATE agents SET webhook_secret = $1, webhook_secret_sealed = NULL")
        .bind(secret)
        .execute(&pipeline.app.db)
        .await
        .unwrap();
    let sealer = migrate_sealer(&pipeline.app).await;
    assert_eq!(seal_legacy_secrets(&pipeline.app.db, &sealer, usize::MAX, Report::Quiet).await.unwrap(), 1);

    pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(1, 10).await, "job.created arrives");
    let received = &pipeline.receiver.received()[0];
    let webhook = Webhook::new(secret).unwrap();
    webhook.verify(&received.body, &received.headers).expect("the published library verifies it");
    let data: Value = received.json()["data"].clone();
    assert!(data.get("callback_url").is_none(), "the agent's webhook has no callback URL: {data}");
}

#[tokio::test]
async fn under_cloud_kms_each_process_asks_kms_once_and_webhooks_verify() {
    let kms = KmsStandIn::start().await;
    let key = "projects/local/locations/local/keyRings/agent-registry/cryptoKeys/webhook-secrets";
    let shared_settings = vec![
        ("WEBHOOK_SECRET_KEY", String::new()),
        ("WEBHOOK_SECRET_KMS_KEY", key.to_owned()),
        ("WEBHOOK_SECRET_KMS_ENDPOINT", kms.endpoint()),
    ];
    let pipeline = spawn_pipeline_with(PipelineOptions { shared_settings, ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, registered_client) = pipeline.client().await;
    let rotate = format!("{}/webhook-secret", agent.path());
    let rotated = pipeline.app.signed(&agent.signer, Method::POST, &rotate, &json!({})).await;
    let agent_secret: Value = rotated.json::<Value>().await.unwrap()["webhook_secret"].clone();
    let job = pipeline.create_job(&client, &agent).await;
    let accept = format!("/v1/jobs/{}/accept", job["id"].as_str().unwrap());
    assert_eq!(pipeline.app.signed(&agent.signer, Method::POST, &accept, &Value::Null).await.status(), 200);

    assert!(pipeline.receiver.wait_for(2, 10).await, "job.created and job.accepted arrive");
    for received in pipeline.receiver.received() {
        let secret = if received.path == "/agent" { &agent_secret } else { &registered_client["webhook_secret"] };
        let webhook = Webhook::new(secret.as_str().unwrap()).unwrap();
        webhook.verify(&received.body, &received.headers).expect("the published library verifies it");
    }
    assert_eq!(plaintext_secrets(&pipeline.app.db).await, Vec::<String>::new());
    assert_eq!(kms.encrypts(), 1, "the API wraps one data key for all its secrets");
    assert_eq!(kms.decrypts(), 1, "the worker unwraps it once for every webhook");
}

/// A batch mixes agents with a plaintext current secret, a plaintext
/// previous one, or both: each sealed column takes only what was plaintext.
#[tokio::test]
async fn a_batch_of_agents_seals_each_plaintext_column_and_keeps_sealed_ones() {
    let app = spawn_app().await;
    let (current_only, previous_only, both) =
        (app.register_agent(json!({})).await, app.register_agent(json!({})).await, app.register_agent(json!({})).await);
    let id = |agent: &tests::TestAgent| agent.registered["id"].as_str().unwrap().to_owned();
    let uuid = |agent: &tests::TestAgent| uuid::Uuid::parse_str(&id(agent)[4..]).unwrap();
    let (old_current, old_previous) =
        ("whsec_Y3VycmVudCBzZWNyZXQsIDI0IGJ5dGVzISE=", "whsec_cHJldmlvdXMgc2VjcmV0LCAyNCBieXRlcyE=");
    let sealed_before: Vec<u8> = sqlx::query_scalar("SELECT webhook_secret_sealed FROM agents WHERE id = $1")
        .bind(uuid(&previous_only))
        .fetch_one(&app.db)
        .await
        .unwrap();
    for (agent, current, previous) in [
        (&current_only, Some(old_current), None),
        (&previous_only, None, Some(old_previous)),
        (&both, Some(old_current), Some(old_previous)),
    ] {
        sqlx::query(
            "UPDATE agents SET
                 webhook_secret = $2, webhook_secret_sealed = CASE WHEN $2 IS NULL THEN webhook_secret_sealed END,
                 previous_webhook_secret = $3,
                 previous_webhook_secret_expires_at = CASE WHEN $3 IS NOT NULL THEN now() + interval '1 day' END
             WHERE id = $1",
        )
        .bind(uuid(agent))
        .bind(current)
        .bind(previous)
        .execute(&app.db)
        .await
        .unwrap();
    }

    let sealer = migrate_sealer(&app).await;
    assert_eq!(
        seal_legacy_secrets(&app.db, &sealer, usize::MAX, Report::Quiet).await.unwrap(),
        3,
        "one statement, three rows"
    );
    assert_eq!(plaintext_secrets(&app.db).await, Vec::<String>::new());
    for (agent, current, previous) in [
        (&current_only, Some(old_current), None),
        (&previous_only, None, Some(old_previous)),
        (&both, Some(old_current), Some(old_previous)),
    ] {
        let (sealed_current, sealed_previous): (Vec<u8>, Option<Vec<u8>>) =
            sqlx::query_as("SELECT webhook_secret_sealed, previous_webhook_secret_sealed FROM agents WHERE id = $1")
                .bind(uuid(agent))
                .fetch_one(&app.db)
                .await
                .unwrap();
        let opened = sealer.open(&sealed_current, &id(agent)).await.unwrap();
        match current {
            Some(current) => assert_eq!(opened.expose_secret(), current),
            None => assert_eq!(sealed_current, sealed_before, "a sealed current secret is left as it was"),
        }
        let opened_previous = match &sealed_previous {
            Some(sealed) => Some(sealer.open(sealed, &id(agent)).await.unwrap().expose_secret().to_owned()),
            None => None,
        };
        assert_eq!(opened_previous.as_deref(), previous, "{}", id(agent));
    }
}
