//! The webhook pipeline end to end: API → outbox → relay → Cloud Tasks
//! stand-in → worker → receiver, and the faults it must survive.

use serde_json::{Value, json};
use standardwebhooks::Webhook;
use tests::Method;
use tests::pipeline::{PipelineOptions, spawn_pipeline, spawn_pipeline_with};

/// Verifies with the published Standard Webhooks library, not our signer.
fn verify(secret: &Value, received: &tests::pipeline::Received) {
    let webhook = Webhook::new(secret.as_str().unwrap()).expect("a whsec_ secret");
    webhook.verify(&received.body, &received.headers).expect("the signature verifies");
}

#[tokio::test]
async fn a_job_reaches_the_agent_and_its_progress_the_client_signed() {
    let pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, registered_client) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;
    assert_eq!(job["fee"], "0.25", "2.5% of 10");

    assert!(pipeline.receiver.wait_for(1, 10).await, "job.created arrives");
    let created = &pipeline.receiver.received()[0];
    assert_eq!(created.path, "/agent");
    verify(&agent.registered["webhook_secret"], created);
    assert_eq!(created.json()["type"], "job.created");
    assert_eq!(created.json()["data"]["id"], job["id"]);
    assert!(created.headers["webhook-id"].to_str().unwrap().starts_with("dlv_"));
    assert!(created.headers["user-agent"].to_str().unwrap().starts_with("agent-registry-webhooks/"));

    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    let accepted = pipeline.app.signed(&agent.signer, Method::POST, &format!("{path}/accept"), &Value::Null).await;
    assert_eq!(accepted.status(), 200);
    let result = json!({"result": {"text": "Hello"}});
    let completed = pipeline.app.signed(&agent.signer, Method::POST, &format!("{path}/complete"), &result).await;
    assert_eq!(completed.status(), 200);

    assert!(pipeline.receiver.wait_for(3, 10).await, "the callbacks arrive");
    let callbacks: Vec<_> = pipeline.receiver.received().into_iter().filter(|r| r.path == "/client").collect();
    let types: Vec<Value> = callbacks.iter().map(|callback| callback.json()["type"].clone()).collect();
    assert_eq!(types, ["job.accepted", "job.completed"], "in order of occurrence");
    for callback in &callbacks {
        verify(&registered_client["webhook_secret"], callback);
    }
    assert_eq!(callbacks[1].json()["data"]["result"], json!({"text": "Hello"}));

    let deliveries = pipeline.deliveries(&client, &job).await;
    assert_eq!(deliveries.len(), 2, "the client sees its callbacks, not the agent's deliveries");
    assert!(deliveries.iter().all(|delivery| delivery["status"] == "delivered"), "{deliveries:?}");
    let agents: Vec<Value> = pipeline.deliveries(&agent.signer, &job).await;
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["event_type"], "job.created");
}

#[tokio::test]
async fn failures_are_retried_until_delivered() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![500, 500], ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;

    assert!(pipeline.receiver.wait_for(3, 10).await, "three attempts reach the receiver");
    assert!(pipeline.standin.wait_idle(std::time::Duration::from_secs(10)).await);
    let deliveries = pipeline.deliveries(&agent.signer, &job).await;
    let attempts: Vec<(Value, Value)> = deliveries[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| (attempt["attempt"].clone(), attempt["outcome"].clone()))
        .collect();
    assert_eq!(attempts, [(json!(1), json!("retry")), (json!(2), json!("retry")), (json!(3), json!("delivered"))]);
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(pipeline.receiver.received().len(), 3);
}

#[tokio::test]
async fn a_receiver_down_for_every_attempt_makes_the_delivery_dead_and_visible() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![503; 10], ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;

    assert!(pipeline.receiver.wait_for(5, 15).await);
    assert!(pipeline.standin.wait_idle(std::time::Duration::from_secs(15)).await);
    let deliveries = pipeline.deliveries(&agent.signer, &job).await;
    assert_eq!(deliveries[0]["status"], "dead");
    let attempts = deliveries[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 5, "the queue's five attempts, no more");
    assert_eq!(attempts[4]["outcome"], "dead");
    assert_eq!(pipeline.receiver.received().len(), 5);

    // The agent sees it too, and can have it sent again once it is back.
    let path = format!("/v1/agents/{}/deliveries", agent.registered["id"].as_str().unwrap());
    let listed: Vec<Value> =
        pipeline.app.signed(&agent.signer, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    assert_eq!(listed[0]["status"], "dead");
    let resend = format!("/v1/deliveries/{}/resend", listed[0]["id"].as_str().unwrap());
    assert_eq!(pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await.status(), 202);
    assert!(pipeline.receiver.wait_for(6, 10).await, "the resend goes out");
}

#[tokio::test]
async fn a_delivery_committed_during_an_outage_goes_out_after_a_restart() {
    let mut pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.standin.set_available(false);
    let job = pipeline.create_job(&client, &agent).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(pipeline.deliveries(&agent.signer, &job).await[0]["status"], "pending", "committed, not enqueued");

    // The API process dies with the delivery pending; a new one starts after Cloud Tasks is back.
    pipeline.app = pipeline.app.restart().await;
    pipeline.standin.set_available(true);
    assert!(pipeline.receiver.wait_for(1, 10).await, "the delivery goes out");
    assert_eq!(pipeline.receiver.received()[0].json()["data"]["id"], job["id"]);
}

#[tokio::test]
async fn the_same_task_pushed_twice_is_delivered_once() {
    let pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.standin.set_available(false);
    let job = pipeline.create_job(&client, &agent).await;
    let delivery = pipeline.deliveries(&agent.signer, &job).await[0]["id"].as_str().unwrap().to_owned();

    let resend = format!("/v1/deliveries/{delivery}/resend");
    let early = pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await;
    assert_eq!(early.status(), 409, "only a finished delivery is resent");

    let (first, second) = tokio::join!(pipeline.push(&delivery, 0), pipeline.push(&delivery, 0));
    let statuses = [first.status().as_u16(), second.status().as_u16()];
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(pipeline.push(&delivery, 1).await.status(), 200, "a delivered delivery is acknowledged");
    assert_eq!(pipeline.receiver.received().len(), 1, "sent once");

    assert_eq!(pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await.status(), 202);
    assert_eq!(pipeline.push(&delivery, 0).await.status(), 200, "a push of the task before the resend");
    assert_eq!(pipeline.receiver.received().len(), 1, "is dropped, not sent");
}

#[tokio::test]
async fn pushes_need_the_worker_credentials_and_the_queue() {
    let pipeline = spawn_pipeline().await;
    let body = json!({"delivery_id": "dlv_00000000000000000000000000000000", "generation": 0});
    let bare = pipeline.app.http.post(&pipeline.worker_url).json(&body).send().await.unwrap();
    assert_eq!(bare.status(), 401);
}

#[tokio::test]
async fn non_public_targets_are_refused_without_a_request_leaving() {
    let pipeline = spawn_pipeline_with(PipelineOptions { egress_allow: "", ..Default::default() }).await;
    let (client, _) = pipeline.client().await;
    let port = reqwest::Url::parse(&pipeline.receiver.url("/")).unwrap().port().unwrap();
    let targets = [
        format!("http://127.0.0.1:{port}/agent"),
        format!("http://localhost:{port}/agent"),
        format!("http://[::1]:{port}/agent"),
        "http://10.1.2.3/agent".to_owned(),
        "http://169.254.169.254/computeMetadata/v1/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
    ];
    let mut jobs = Vec::new();
    for target in &targets {
        let agent = pipeline.app.register_agent(json!({"endpoint_url": target})).await;
        jobs.push((pipeline.create_job(&client, &agent).await, agent));
    }
    let all_dead = async || {
        for (job, agent) in &jobs {
            if pipeline.deliveries(&agent.signer, job).await[0]["status"] != "dead" {
                return false;
            }
        }
        true
    };
    assert!(tests::eventually(15, all_dead).await, "every delivery ends dead");
    for (target, (job, agent)) in targets.iter().zip(&jobs) {
        let delivery = &pipeline.deliveries(&agent.signer, job).await[0];
        assert_eq!(delivery["status"], "dead", "{target}");
        assert_eq!(delivery["attempts"][0]["outcome"], "refused", "{target}");
    }
    assert!(pipeline.receiver.received().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_it_changes() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![410], ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let first = pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(1, 10).await);
    assert!(pipeline.standin.wait_idle(std::time::Duration::from_secs(10)).await);
    let delivery = &pipeline.deliveries(&agent.signer, &first).await[0];
    assert_eq!((&delivery["status"], &delivery["attempts"][0]["outcome"]), (&json!("dead"), &json!("gone")));

    let second = pipeline.create_job(&client, &agent).await;
    let unsent = &pipeline.deliveries(&agent.signer, &second).await[0];
    assert_eq!(unsent["status"], "dead", "a disabled endpoint gets nothing");
    assert_eq!(unsent["last_error"], shared::webhooks::ENDPOINT_DISABLED);
    assert!(unsent["attempts"].as_array().unwrap().is_empty());

    let new_endpoint = json!({"endpoint_url": pipeline.receiver.url("/agent-v2")});
    assert_eq!(pipeline.app.signed(&agent.signer, Method::PATCH, &agent.path(), &new_endpoint).await.status(), 200);
    let third = pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(2, 10).await, "a new endpoint is enabled again");
    assert_eq!(pipeline.receiver.received()[1].path, "/agent-v2");
    assert_eq!(pipeline.receiver.received()[1].json()["data"]["id"], third["id"]);
}

#[tokio::test]
async fn a_throttled_receiver_makes_cloud_tasks_back_off() {
    let pipeline = spawn_pipeline_with(PipelineOptions { statuses: vec![429], ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(2, 10).await);
    assert!(pipeline.standin.wait_idle(std::time::Duration::from_secs(10)).await);
    let answers: Vec<_> = pipeline.standin.attempts().into_iter().map(|attempt| attempt.response).collect();
    assert_eq!(answers, [Ok(503), Ok(200)], "503 tells Cloud Tasks to slow down");
    let delivery = &pipeline.deliveries(&agent.signer, &job).await[0];
    assert_eq!(delivery["attempts"][0]["response_status"], 429);
    assert_eq!(delivery["status"], "delivered");
}
