//! The webhook pipeline end to end: API → outbox → relay → Cloud Tasks
//! stand-in → worker → receiver, and the faults it must survive.

use std::time::Duration;

use serde_json::{Value, json};
use standardwebhooks::Webhook;
use tests::Method;
use tests::cloud_tasks::StandInConfig;
use tests::pipeline::{NO_ANSWER, PipelineOptions, Receiver, spawn_pipeline, spawn_pipeline_with};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

    // The worker records the outcome after the receiver has answered.
    let all_delivered = tests::eventually(10, || async {
        let deliveries = pipeline.deliveries(&client, &job).await;
        deliveries.len() == 2 && deliveries.iter().all(|delivery| delivery["status"] == "delivered")
    })
    .await;
    let deliveries = pipeline.deliveries(&client, &job).await;
    assert!(all_delivered, "the client sees its two callbacks, delivered: {deliveries:?}");
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
    assert_eq!(attempts.len(), 5, "the schedule's five attempts, no more");
    assert_eq!(attempts[4]["outcome"], "dead");
    assert_eq!(pipeline.receiver.received().len(), 5);

    // The agent sees it too, and can have it sent again once it is back.
    let path = format!("/v1/agents/{}/deliveries", agent.registered["id"].as_str().unwrap());
    let page: Value = pipeline.app.signed(&agent.signer, Method::GET, &path, &Value::Null).await.json().await.unwrap();
    let listed = &page["deliveries"][0];
    assert_eq!(listed["status"], "dead");
    let resend = format!("/v1/deliveries/{}/resend", listed["id"].as_str().unwrap());
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

    let (first, second) = tokio::join!(pipeline.push(&delivery, 1), pipeline.push(&delivery, 1));
    let statuses = [first.status().as_u16(), second.status().as_u16()];
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(pipeline.push(&delivery, 1).await.status(), 200, "a recorded attempt is acknowledged");
    assert_eq!(pipeline.push(&delivery, 2).await.status(), 200, "so is any push of a delivered delivery");
    assert_eq!(pipeline.receiver.received().len(), 1, "sent once");

    assert_eq!(pipeline.app.signed(&agent.signer, Method::POST, &resend, &Value::Null).await.status(), 202);
    assert_eq!(pipeline.push(&delivery, 1).await.status(), 200, "a push of the task before the resend");
    assert_eq!(pipeline.receiver.received().len(), 1, "is dropped, not sent");
}

#[tokio::test]
async fn pushes_need_the_worker_credentials_not_the_queue_header() {
    let pipeline = spawn_pipeline().await;
    let body = json!({"delivery_id": "dlv_00000000000000000000000000000000", "generation": 0});
    let bare = pipeline.app.http.post(&pipeline.worker_url).json(&body).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    let queue_header =
        pipeline.app.http.post(&pipeline.worker_url).header("x-cloudtasks-queuename", "webhook-delivery");
    assert_eq!(queue_header.json(&body).send().await.unwrap().status(), 401, "a header anyone can set admits nothing");
    let wrong = pipeline.app.http.post(&pipeline.worker_url).header("authorization", "Bearer test-worker-secreT");
    assert_eq!(wrong.json(&body).send().await.unwrap().status(), 401);
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
        // Refused at registration too: set behind the API's back, as a name
        // that resolved to a public address then and a private one now would.
        let agent = pipeline.app.register_agent(json!({})).await;
        let id = agent.registered["id"].as_str().unwrap().trim_start_matches("agt_");
        sqlx::query("UPDATE agents SET endpoint_url = $1 WHERE id = $2")
            .bind(target)
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .execute(&pipeline.app.db)
            .await
            .unwrap();
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

/// The attempts of a delivery as the deliveries API shows them: (outcome, started_at).
fn attempts_of(delivery: &Value) -> Vec<(String, OffsetDateTime)> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| {
            let started = OffsetDateTime::parse(attempt["started_at"].as_str().unwrap(), &Rfc3339).unwrap();
            (attempt["outcome"].as_str().unwrap().to_owned(), started)
        })
        .collect()
}

#[tokio::test]
async fn a_receiver_down_for_forty_seconds_gets_its_webhook_on_the_workers_schedule() {
    let schedule = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
    let options = PipelineOptions { retry_schedule: "1s,2s,4s,8s,16s,32s", ..Default::default() };
    let mut pipeline = spawn_pipeline_with(options).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.receiver.stop();
    let job = pipeline.create_job(&client, &agent).await;

    tokio::time::sleep(Duration::from_secs(40)).await;
    assert!(pipeline.receiver.received().is_empty(), "connections were refused");
    pipeline.receiver.restart().await;
    assert!(pipeline.receiver.wait_for(1, 40).await, "the webhook arrives with nobody acting");
    assert_eq!(pipeline.receiver.received()[0].json()["data"]["id"], job["id"]);

    // The worker records the outcome before it answers the push.
    assert!(pipeline.standin.wait_idle(Duration::from_secs(10)).await);
    let delivery = &pipeline.deliveries(&agent.signer, &job).await[0];
    assert_eq!(delivery["status"], "delivered");
    let attempts = attempts_of(delivery);
    let (last, failed) = attempts.split_last().unwrap();
    assert_eq!(last.0, "delivered");
    assert!(failed.len() >= 5 && failed.iter().all(|(outcome, _)| outcome == "retry"), "{attempts:?}");
    for (index, pair) in attempts.windows(2).enumerate() {
        let gap = (pair[1].1 - pair[0].1).as_seconds_f64();
        let step = schedule[index];
        assert!(
            gap >= step * 0.8 - 0.05 && gap <= step * 1.2 + 1.5,
            "attempt {}: {gap} s after, step {step} s",
            index + 2
        );
    }
    let answers: Vec<_> = pipeline.standin.attempts().into_iter().map(|attempt| attempt.response).collect();
    assert!(answers.iter().all(|answer| *answer == Ok(200)), "the worker never failed a push: {answers:?}");
}

#[tokio::test]
async fn a_throttling_receiver_delays_only_its_own_deliveries() {
    let options = PipelineOptions { retry_schedule: "5s,30s,5m,30m,2h", ..Default::default() };
    let pipeline = spawn_pipeline_with(options).await;
    let throttling = Receiver::start(0, vec![429]).await;
    throttling.set_retry_after(3600);
    let a = pipeline.app.register_agent(json!({"endpoint_url": throttling.url("/a")})).await;
    let b = pipeline.agent().await;
    let (client, _) = pipeline.client().await;

    let created = tokio::time::Instant::now();
    let job_a = pipeline.create_job(&client, &a).await;
    let mut jobs_b = Vec::new();
    for _ in 0..5 {
        jobs_b.push(pipeline.create_job(&client, &b).await);
    }
    assert!(pipeline.receiver.wait_for(5, 10).await, "B's webhooks arrive");
    let slowest = pipeline.receiver.received().iter().map(|received| received.at - created).max().unwrap();
    assert!(slowest < Duration::from_secs(2), "B's webhooks are not slowed: the last came after {slowest:?}");
    assert!(throttling.wait_for(1, 10).await);
    // The worker records the attempt once the receiver has answered it, then creates the retry's task.
    let settled = || async {
        let recorded = !pipeline.deliveries(&a.signer, &job_a).await[0]["attempts"][0].is_null();
        let later = OffsetDateTime::now_utc() + time::Duration::minutes(30);
        recorded && pipeline.standin.created_tasks().iter().any(|task| task.schedule_time > later)
    };
    assert!(tests::eventually(10, settled).await, "the 429 is recorded and its retry scheduled");

    // A's next attempt is about an hour out, and the worker answered Cloud Tasks 200 throughout.
    let throttled = &pipeline.deliveries(&a.signer, &job_a).await[0];
    assert_eq!(throttled["status"], "dispatched");
    assert_eq!(throttled["attempts"][0]["response_status"], 429);
    let next = OffsetDateTime::parse(throttled["next_attempt_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let wait = (next - OffsetDateTime::now_utc()).as_seconds_f64();
    assert!((3500.0..=3600.0).contains(&wait), "next attempt in {wait} s");
    let scheduled = pipeline.standin.created_tasks().into_iter().map(|task| task.schedule_time).max().unwrap();
    assert!(
        ((scheduled - OffsetDateTime::now_utc()).as_seconds_f64() - wait).abs() < 2.0,
        "the task is scheduled then"
    );
    let answers: Vec<_> = pipeline.standin.attempts().into_iter().map(|attempt| attempt.response).collect();
    assert!(answers.iter().all(|answer| *answer == Ok(200)), "never 429/503 to Cloud Tasks: {answers:?}");

    // A task merely scheduled far ahead is never swept, however overdue the row looks.
    sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '2 hours' WHERE agent_id IS NOT NULL AND status = 'dispatched'")
        .execute(&pipeline.app.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (status, generation): (String, i32) = sqlx::query_as(
        "SELECT status, generation FROM webhook_deliveries WHERE agent_id IS NOT NULL AND status <> 'delivered'",
    )
    .fetch_one(&pipeline.app.db)
    .await
    .unwrap();
    assert_eq!((status.as_str(), generation), ("dispatched", 0), "its task exists, so it stays");
    assert_eq!(throttling.received().len(), 1, "and nothing more was sent to A");
}

/// Whether the receiver's URL is paced (a failure was recorded against it).
async fn url_is_paced(pipeline: &tests::pipeline::Pipeline) -> bool {
    let paced = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM endpoint_health").fetch_one(&pipeline.app.db);
    paced.await.unwrap() == 1
}

#[tokio::test]
async fn a_failing_endpoint_is_probed_by_one_delivery_while_the_others_wait() {
    let options = PipelineOptions { statuses: vec![500], retry_schedule: "2s,10s", ..Default::default() };
    let pipeline = spawn_pipeline_with(options).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(1, 10).await, "the first delivery fails");
    let failed_at = pipeline.receiver.received()[0].at;
    assert!(tests::eventually(5, || url_is_paced(&pipeline)).await, "the failure is recorded and paces the URL");
    for _ in 0..3 {
        pipeline.create_job(&client, &agent).await;
    }
    assert!(pipeline.receiver.wait_for(5, 20).await, "the probe and the waiting deliveries all arrive");
    let later: Vec<Duration> =
        pipeline.receiver.received()[1..].iter().map(|received| received.at - failed_at).collect();
    assert!(
        later.iter().all(|after| *after >= Duration::from_millis(1500)),
        "nothing before the run's next attempt: {later:?}"
    );
    // The receiver counts a request on arrival and its answer after sending it.
    let all_answered = || async { pipeline.receiver.answered().len() == 5 };
    assert!(tests::eventually(5, all_answered).await, "{:?}", pipeline.receiver.answered());
    assert_eq!(pipeline.receiver.answered(), [500, 200, 200, 200, 200]);
}

#[tokio::test]
async fn no_more_than_the_endpoint_concurrency_is_in_flight_to_one_host() {
    let options = PipelineOptions { endpoint_concurrency: 2, ..Default::default() };
    let pipeline = spawn_pipeline_with(options).await;
    pipeline.receiver.set_delay(Duration::from_millis(300));
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    for _ in 0..6 {
        pipeline.create_job(&client, &agent).await;
    }
    let all_answered = || async { pipeline.receiver.answered().len() >= 6 };
    assert!(tests::eventually(30, all_answered).await, "every webhook arrives");
    assert_eq!(pipeline.receiver.most_in_flight(), 2, "two at a time, no more");
    assert_eq!(pipeline.receiver.received().len(), 6, "each once");
    // Every push that sent gave back its recipient's and its host's slot,
    // and those that found the host full took neither (Redis drops a set
    // once it is empty).
    assert!(pipeline.standin.wait_idle(Duration::from_secs(10)).await);
    let held: Vec<_> = pipeline.app.redis_keys().await.into_iter().filter(|(key, _)| key.contains("slots:")).collect();
    assert!(held.is_empty(), "slots still held: {held:?}");
}

#[tokio::test]
async fn a_worker_killed_mid_send_delivers_once_after_cloud_tasks_pushes_again() {
    let crash_net = StandInConfig {
        max_attempts: 30,
        min_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(2),
        ..StandInConfig::fast_for_tests()
    };
    let options = PipelineOptions {
        standin: crash_net,
        statuses: vec![NO_ANSWER],
        // The killed send's lease lapses after this and 5 s. The second send
        // must not time out on a loaded CI box: at 2 s it once did, at 4 s
        // once more (beside a release build), and the worker then rightly
        // sent a third time.
        webhook_timeout: Duration::from_secs(8),
        ..Default::default()
    };
    let mut pipeline = spawn_pipeline_with(options).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;
    assert!(pipeline.receiver.wait_for(1, 10).await, "the worker is sending");
    pipeline.kill_worker();
    pipeline.restart_worker();

    assert!(pipeline.receiver.wait_for(2, 30).await, "sent again once its lease lapsed");
    assert!(pipeline.standin.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(pipeline.receiver.answered(), [200], "acknowledged exactly once");
    assert_eq!(pipeline.receiver.received().len(), 2);
    let delivery = &pipeline.deliveries(&agent.signer, &job).await[0];
    assert_eq!(delivery["status"], "delivered");
    let outcomes: Vec<String> = attempts_of(delivery).into_iter().map(|(outcome, _)| outcome).collect();
    assert_eq!(outcomes, ["delivered"], "the killed attempt left no record; the retry did");
}

#[tokio::test]
async fn a_delivery_whose_task_is_lost_is_found_by_the_sweep_and_delivered() {
    let crash_net = StandInConfig { max_attempts: 2, ..StandInConfig::fast_for_tests() };
    let mut pipeline = spawn_pipeline_with(PipelineOptions { standin: crash_net, ..Default::default() }).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.kill_worker();
    let job = pipeline.create_job(&client, &agent).await;
    assert!(tests::eventually(10, || async { pipeline.standin.attempts().len() == 2 }).await);
    assert!(pipeline.standin.wait_idle(Duration::from_secs(5)).await, "Cloud Tasks gave the task up");
    assert_eq!(pipeline.deliveries(&agent.signer, &job).await[0]["status"], "dispatched");

    // Long overdue, and Cloud Tasks no longer has its task: the sweep queues it again.
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '11 minutes' WHERE agent_id IS NOT NULL",
    )
    .execute(&pipeline.app.db)
    .await
    .unwrap();
    pipeline.restart_worker();
    assert!(pipeline.receiver.wait_for(1, 30).await, "the swept delivery goes out");
    assert!(pipeline.standin.wait_idle(Duration::from_secs(10)).await, "its outcome is recorded");
    let delivery = &pipeline.deliveries(&agent.signer, &job).await[0];
    assert_eq!(delivery["status"], "delivered");
    let names: Vec<String> = pipeline.standin.created_tasks().into_iter().map(|task| task.name).collect();
    assert!(names.last().unwrap().ends_with("-1-1"), "a new generation's first attempt: {names:?}");
}

#[tokio::test]
async fn a_delivery_waiting_on_a_failing_url_for_its_whole_schedule_dies_unsent() {
    let options = PipelineOptions { statuses: vec![500; 10], retry_schedule: "1s", ..Default::default() };
    let pipeline = spawn_pipeline_with(options).await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    pipeline.create_job(&client, &agent).await;
    assert!(tests::eventually(5, || url_is_paced(&pipeline)).await, "the first failure paces the URL");

    // Its wait would end after its own (one-second) schedule: it dies now, unsent.
    let late = pipeline.create_job(&client, &agent).await;
    let dead = || async { pipeline.deliveries(&agent.signer, &late).await[0]["status"] == "dead" };
    assert!(tests::eventually(10, dead).await);
    let delivery = &pipeline.deliveries(&agent.signer, &late).await[0];
    assert_eq!(delivery["last_error"], "the endpoint kept failing for the whole retry schedule; not sent");
    assert!(delivery["attempts"].as_array().unwrap().is_empty(), "{delivery}");
    assert!(pipeline.standin.wait_idle(Duration::from_secs(10)).await);
    let to_late: Vec<_> = pipeline
        .receiver
        .received()
        .into_iter()
        .filter(|received| received.json()["data"]["id"] == late["id"])
        .collect();
    assert!(to_late.is_empty(), "nothing was sent for it");
}

#[tokio::test]
async fn a_receiver_down_past_the_whole_schedule_gets_everything_after_recover() {
    let mut pipeline = spawn_pipeline().await;
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let since = OffsetDateTime::now_utc();
    pipeline.receiver.stop();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(pipeline.create_job(&client, &agent).await);
    }
    let all_dead = || async {
        let mut dead = true;
        for job in &jobs {
            dead &= pipeline.deliveries(&agent.signer, job).await[0]["status"] == "dead";
        }
        dead
    };
    assert!(tests::eventually(20, all_dead).await, "the schedule runs out for every delivery");

    pipeline.receiver.restart().await;
    let recover = format!("{}/deliveries/recover", agent.path());
    let body = json!({"since": since.format(&Rfc3339).unwrap()});
    let recovered = pipeline.app.signed(&agent.signer, Method::POST, &recover, &body).await;
    assert_eq!(recovered.status(), 202);
    assert_eq!(
        recovered.json::<Value>().await.unwrap(),
        json!({"queued": 3, "more": false, "at_cap": 0, "refused": 0})
    );
    assert!(pipeline.receiver.wait_for(3, 20).await, "everything arrives once the receiver is back");
    let mut ids: Vec<Value> =
        pipeline.receiver.received().iter().map(|received| received.json()["data"]["id"].clone()).collect();
    ids.sort_by_key(ToString::to_string);
    let mut expected: Vec<Value> = jobs.iter().map(|job| job["id"].clone()).collect();
    expected.sort_by_key(ToString::to_string);
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn one_instance_at_a_time_holds_a_background_task() {
    let app = tests::spawn_app().await;
    let (mine, theirs) = (
        api::background::singleton::Singleton::new("test", std::time::Duration::from_secs(30)),
        api::background::singleton::Singleton::new("test", std::time::Duration::from_secs(30)),
    );
    assert!(mine.hold(&app.db).await.unwrap());
    assert!(mine.hold(&app.db).await.unwrap(), "the holder renews");
    assert!(!theirs.hold(&app.db).await.unwrap(), "another instance waits");
    mine.release(&app.db).await;
    assert!(theirs.hold(&app.db).await.unwrap(), "and takes over once it is handed back");
    sqlx::query("UPDATE publisher_lease SET until = now() - interval '1 second' WHERE name = 'test'")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(mine.hold(&app.db).await.unwrap(), "or once it expired");
}

#[tokio::test]
async fn deliveries_spread_over_the_queues_and_each_keeps_to_its_own() {
    let options = PipelineOptions {
        // Two sends at a time to the receiver's host, each held 300 ms: the
        // worker defers the others, creating their later tasks itself.
        endpoint_concurrency: 2,
        shared_settings: vec![("CLOUD_TASKS_QUEUE_COUNT", "3".to_owned())],
        ..Default::default()
    };
    let pipeline = spawn_pipeline_with(options).await;
    pipeline.receiver.set_delay(Duration::from_millis(300));
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let mut jobs = Vec::new();
    for _ in 0..12 {
        jobs.push(pipeline.create_job(&client, &agent).await);
    }
    assert!(pipeline.receiver.wait_for(12, 30).await, "twelve deliveries");
    assert!(pipeline.standin.wait_idle(Duration::from_secs(10)).await);

    let tasks: Vec<String> = pipeline.standin.created_tasks().into_iter().map(|task| task.name).collect();
    let (mut used, mut later_tasks) = (std::collections::BTreeSet::new(), 0);
    for job in &jobs {
        let delivery = &pipeline.deliveries(&agent.signer, job).await[0];
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        let id = delivery["id"].as_str().unwrap().strip_prefix("dlv_").unwrap();
        let queues: Vec<&str> = tasks
            .iter()
            .filter(|task| task.contains(&format!("/tasks/{id}-")))
            .map(|task| task.split("/tasks/").next().unwrap().rsplit('/').next().unwrap())
            .collect();
        let expected = match u128::from_str_radix(id, 16).unwrap() % 3 {
            0 => "webhook-delivery".to_owned(),
            index => format!("webhook-delivery-{index}"),
        };
        assert!(!queues.is_empty() && queues.iter().all(|queue| *queue == expected), "{id}: {queues:?}");
        later_tasks += queues.len() - 1;
        used.insert(expected);
    }
    assert!(later_tasks >= 1, "the worker deferred some: {tasks:?}");
    assert!(used.len() >= 2, "twelve deliveries all in {used:?}");
}

/// The uuid of a prefixed id (`dlv_…`), as task names and columns hold it.
fn uuid_of(id: &Value) -> uuid::Uuid {
    uuid::Uuid::parse_str(id.as_str().unwrap().split_once('_').unwrap().1).unwrap()
}

#[tokio::test]
async fn a_recipients_recovered_backlog_delays_anothers_new_delivery_by_at_most_one_relay_batch() {
    const RELAY_BATCH: usize = 32;
    let pipeline = spawn_pipeline().await;
    // Cloud Tasks away: everything written stays pending until it is back.
    pipeline.standin.set_available(false);
    let busy = pipeline.agent().await;
    let other = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let job = pipeline.app.hire(&client, &busy).await;
    let first = uuid_of(&pipeline.deliveries(&busy.signer, &job).await[0]["id"]);
    // 1,000 deliveries to `busy` made 13 days ago, dead an hour ago.
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, status, created_at, finished_at,
                                         dead_lettered_at, last_error)
         SELECT gen_random_uuid(), event_id, job_id, agent_id, target_url, 'dead', now() - interval '13 days',
                now() - interval '1 hour' + make_interval(secs => n), now(), 'answered 503'
         FROM webhook_deliveries, generate_series(1, 1000) AS n WHERE id = $1",
    )
    .bind(first)
    .execute(&pipeline.app.db)
    .await
    .unwrap();
    let recover = format!("{}/deliveries/recover", busy.path());
    let since = (OffsetDateTime::now_utc() - time::Duration::hours(2)).format(&Rfc3339).unwrap();
    let recovered = pipeline.app.signed(&busy.signer, Method::POST, &recover, &json!({"since": since})).await;
    assert_eq!(recovered.json::<Value>().await.unwrap()["queued"], 1000);

    let fresh = pipeline.app.hire(&client, &other).await;
    let fresh = uuid_of(&pipeline.deliveries(&other.signer, &fresh).await[0]["id"]).simple().to_string();
    pipeline.standin.set_available(true);
    let created = || pipeline.standin.created_tasks().iter().position(|task| task.name.contains(&fresh));
    assert!(tests::eventually(30, || async { created().is_some() }).await, "the new delivery is relayed");
    let position = created().unwrap();
    assert!(position < RELAY_BATCH, "{position} of the backlog's deliveries were relayed before the new one");
}

#[tokio::test]
async fn a_backlog_the_statistics_do_not_know_of_is_relayed_batch_by_batch() {
    const BACKLOG_PER_RECIPIENT: i32 = 3_000;
    // The queue pushes a trickle: what is timed is the relay creating 9,000
    // tasks, not a debug-build worker delivering them on the same two cores
    // (with every push, one CI run took over three minutes).
    let standin = StandInConfig { max_dispatches_per_second: 5, ..StandInConfig::fast_for_tests() };
    let pipeline = spawn_pipeline_with(PipelineOptions { standin, ..PipelineOptions::default() }).await;
    let db = &pipeline.app.db;
    let agents = [pipeline.agent().await, pipeline.agent().await, pipeline.agent().await];
    let (client, _) = pipeline.client().await;
    let mut firsts = Vec::new();
    for agent in &agents {
        let job = pipeline.app.hire(&client, agent).await;
        firsts.push(uuid_of(&pipeline.deliveries(&agent.signer, &job).await[0]["id"]));
    }
    let copies = |status: &'static str| {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, status, created_at,
                                             queued_at, finished_at)
             SELECT gen_random_uuid(), event_id, job_id, agent_id, target_url, $2, now(),
                    now() - make_interval(secs => n / 1000.0), CASE $2 WHEN 'delivered' THEN now() END
             FROM webhook_deliveries, generate_series(1, $3) AS n WHERE id = ANY($1)",
        )
        .bind(&firsts)
        .bind(status)
        .bind(BACKLOG_PER_RECIPIENT)
    };
    // A history of delivered rows, and statistics taken then (autovacuum kept
    // from taking them again): they say nothing is pending.
    copies("delivered").execute(db).await.unwrap();
    sqlx::query("ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false)").execute(db).await.unwrap();
    sqlx::query("ANALYZE webhook_deliveries").execute(db).await.unwrap();
    // Then Cloud Tasks is away while a backlog builds up.
    pipeline.standin.set_available(false);
    copies("pending").execute(db).await.unwrap();
    pipeline.standin.set_available(true);

    let pending = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .fetch_one(db)
            .await
            .unwrap()
    };
    // Generous: 9,000 tasks from a debug build, sharing two cores with the
    // rest of the suite.
    assert!(
        tests::eventually(180, || async { pending().await == 0 }).await,
        "{} of {} still pending",
        pending().await,
        3 * BACKLOG_PER_RECIPIENT
    );
}

/// Listeners on 127.0.0.2, 127.0.0.3, … (each a host of its own) that
/// accept connections and never answer: callback URLs on each.
async fn hanging_hosts(count: u8) -> (Vec<String>, tokio::task::JoinSet<()>) {
    let mut listeners = tokio::task::JoinSet::new();
    let mut urls = Vec::new();
    for host in 0..count {
        let address = std::net::Ipv4Addr::new(127, 0, 0, host + 2);
        let listener = tokio::net::TcpListener::bind((address, 0)).await.unwrap();
        urls.push(format!("http://{}/hang", listener.local_addr().unwrap()));
        listeners.spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
    }
    (urls, listeners)
}

#[tokio::test]
async fn a_client_with_fifty_hanging_callback_hosts_does_not_slow_another_clients_deliveries() {
    let pipeline = spawn_pipeline_with(PipelineOptions {
        // The fleet's shared budget of sends in flight: fewer than the hanging hosts.
        standin: StandInConfig {
            max_concurrent_dispatches: 20,
            dispatch_deadline: Duration::from_secs(30),
            ..StandInConfig::fast_for_tests()
        },
        webhook_timeout: Duration::from_secs(15),
        shared_settings: vec![("WEBHOOK_RECIPIENT_CONCURRENCY", "4".to_owned())],
        ..Default::default()
    })
    .await;
    let agent = pipeline.agent().await;
    let (hog, _) = pipeline.client().await;
    let (hanging, _listeners) = hanging_hosts(50).await;
    for callback_url in &hanging {
        let body =
            json!({"agent_id": agent.registered["id"], "input": {}, "price": "10", "callback_url": callback_url});
        let job: Value = pipeline.app.signed(&hog, Method::POST, "/v1/jobs", &body).await.json().await.unwrap();
        let accept = format!("/v1/jobs/{}/accept", job["id"].as_str().unwrap());
        assert_eq!(pipeline.app.signed(&agent.signer, Method::POST, &accept, &Value::Null).await.status(), 200);
    }
    // Its job.accepted callbacks are out, hanging.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (client, _) = pipeline.client().await;
    let job = pipeline.create_job(&client, &agent).await;
    let accept = format!("/v1/jobs/{}/accept", job["id"].as_str().unwrap());
    assert_eq!(pipeline.app.signed(&agent.signer, Method::POST, &accept, &Value::Null).await.status(), 200);
    let started = tokio::time::Instant::now();
    let arrived = || async {
        pipeline
            .receiver
            .received()
            .iter()
            .any(|received| received.path == "/client" && received.json()["data"]["id"] == job["id"])
    };
    assert!(
        tests::eventually(4, arrived).await,
        "the other client's callback waits behind the hanging ones (15 s timeout)"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}
