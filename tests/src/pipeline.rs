//! The whole webhook pipeline in one test: the API (with its relay), the
//! Cloud Tasks stand-in, the webhook worker, and a real HTTP receiver.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use webhook_worker::startup::Worker;

use crate::cloud_tasks::{CloudTasksStandIn, StandInConfig};
use crate::{Method, TestAgent, TestApp, TestDatabase, redis_url, settings, spawn_app_on};

const WORKER_SECRET: &str = "test-worker-secret";

pub struct Pipeline {
    pub app: TestApp,
    pub standin: CloudTasksStandIn,
    pub receiver: Receiver,
    /// Where the worker takes pushes, to push to it directly.
    pub worker_url: String,
    /// Aborted when dropped.
    _worker: AbortOnDrop,
}

struct AbortOnDrop(JoinHandle<std::io::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct PipelineOptions {
    pub standin: StandInConfig,
    /// What the receiver answers, in turn; 200 afterwards.
    pub statuses: Vec<u16>,
    /// The worker's `EGRESS_ALLOW_CIDRS`: loopback by default, so the receiver is reachable.
    pub egress_allow: &'static str,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self { standin: StandInConfig::fast_for_tests(), statuses: Vec::new(), egress_allow: "127.0.0.0/8,::1/128" }
    }
}

pub async fn spawn_pipeline() -> Pipeline {
    spawn_pipeline_with(PipelineOptions::default()).await
}

pub async fn spawn_pipeline_with(options: PipelineOptions) -> Pipeline {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(options.statuses).await;
    let worker_settings = settings(&database, &redis_url(), |source| {
        source.set("EGRESS_ALLOW_CIDRS", options.egress_allow);
        source.set("WORKER_SHARED_SECRET", WORKER_SECRET);
    });
    let worker = Worker::build(worker_settings).await.expect("the worker builds");
    let worker_url = format!("http://127.0.0.1:{}/tasks/deliver", worker.port());
    let worker = tokio::spawn(worker.run_until_stopped(std::future::pending()));
    let standin = CloudTasksStandIn::start(StandInConfig {
        authorization: Some(format!("Bearer {WORKER_SECRET}")),
        ..options.standin
    })
    .await
    .expect("the stand-in starts");
    let (endpoint, push_url) = (standin.endpoint(), worker_url.clone());
    let app = spawn_app_on(database, |source, _| {
        source.set("CLOUD_TASKS_ENDPOINT", endpoint);
        source.set("WEBHOOK_WORKER_URL", push_url);
        source.set("ALLOW_HTTP_ENDPOINTS", "true");
    })
    .await;
    Pipeline { app, standin, receiver, worker_url, _worker: AbortOnDrop(worker) }
}

impl Pipeline {
    /// An agent whose endpoint is the receiver.
    pub async fn agent(&self) -> TestAgent {
        self.app.register_agent(json!({"endpoint_url": self.receiver.url("/agent")})).await
    }

    /// A client: its signing key and its registration answer (with `webhook_secret`).
    pub async fn client(&self) -> (crate::RequestSigner, Value) {
        self.app.register_client().await
    }

    /// Pushes a delivery to the worker as Cloud Tasks would.
    pub async fn push(&self, delivery_id: &str, retry_count: u32) -> reqwest::Response {
        self.app
            .http
            .post(&self.worker_url)
            .header("authorization", format!("Bearer {WORKER_SECRET}"))
            .header("x-cloudtasks-queuename", "webhook-delivery")
            .header("x-cloudtasks-taskretrycount", retry_count.to_string())
            .json(&json!({"delivery_id": delivery_id, "generation": 0}))
            .send()
            .await
            .expect("the worker answers")
    }

    /// The deliveries of a job that `party` (its client or agent) receives.
    pub async fn deliveries(&self, party: &crate::RequestSigner, job: &Value) -> Vec<Value> {
        let path = format!("/v1/jobs/{}/deliveries", job["id"].as_str().unwrap());
        let response = self.app.signed(party, Method::GET, &path, &Value::Null).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// A job from `client` to `agent`, with the receiver as callback; returns the job.
    pub async fn create_job(&self, client: &crate::RequestSigner, agent: &TestAgent) -> Value {
        let body = json!({
            "agent_id": agent.registered["id"],
            "input": {"text": "Bonjour"},
            "price": "10",
            "callback_url": self.receiver.url("/client"),
        });
        let response = self.app.signed(client, Method::POST, "/v1/jobs", &body).await;
        assert_eq!(response.status(), 201, "job creation succeeds");
        response.json().await.unwrap()
    }
}

/// A webhook as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhooks are JSON")
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers still to give, first first; afterwards 200.
    statuses: Mutex<Vec<u16>>,
}

/// A local HTTP server standing for agents' endpoints and clients' callbacks.
pub struct Receiver {
    port: u16,
    state: Arc<ReceiverState>,
    server: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ReceiverState { received: Mutex::default(), statuses: Mutex::new(statuses) });
        let router = Router::new().route("/{*path}", post(receive)).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { port, state, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `count` webhooks arrived (true) or `seconds` passed.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> bool {
        crate::eventually(seconds, || async { self.received().len() >= count }).await
    }

    /// Stops answering (connections refused) until restarted.
    pub fn stop(&self) {
        self.server.abort();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.received.lock().unwrap().push(Received { path: format!("/{path}"), headers, body });
    let mut statuses = state.statuses.lock().unwrap();
    let status = if statuses.is_empty() { 200 } else { statuses.remove(0) };
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
