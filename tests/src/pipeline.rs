//! The whole webhook pipeline in one test: the API (with its relay), the
//! Cloud Tasks stand-in, the webhook worker (in a runtime of its own, so a
//! test can kill it mid-send), and a real HTTP receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use webhook_worker::startup::Worker;

use crate::cloud_tasks::{CloudTasksStandIn, StandInConfig};
use crate::{Method, TestAgent, TestApp, TestDatabase, redis_url, spawn_app_on};

const WORKER_SECRET: &str = "test-worker-secret";

/// A receiver status that means: never answer (hold the request open).
pub const NO_ANSWER: u16 = 0;

pub struct Pipeline {
    pub app: TestApp,
    pub standin: CloudTasksStandIn,
    pub receiver: Receiver,
    /// Where the worker takes pushes, to push to it directly.
    pub worker_url: String,
    worker: RunningWorker,
    worker_settings: Arc<dyn Fn(u16) -> shared::settings::Settings + Send + Sync>,
}

pub struct PipelineOptions {
    /// The queue's own retry config: the crash net for the worker's faults.
    pub standin: StandInConfig,
    /// What the receiver answers, in turn (`NO_ANSWER`: hold the request); 200 afterwards.
    pub statuses: Vec<u16>,
    /// The worker's `EGRESS_ALLOW_CIDRS`: loopback by default, so the receiver is reachable. (The
    /// API's is loopback always, so it accepts the receiver as a target.)
    pub egress_allow: &'static str,
    /// The worker's `WEBHOOK_RETRY_SCHEDULE`: by default five attempts within a second.
    pub retry_schedule: &'static str,
    /// The worker's `WEBHOOK_TIMEOUT_SECONDS`.
    pub webhook_timeout: Duration,
    /// The worker's `WEBHOOK_ENDPOINT_CONCURRENCY`.
    pub endpoint_concurrency: u32,
    /// More settings of the API, e.g. `("JOB_ACCEPT_TIMEOUT_SECONDS", "1")`.
    pub api_settings: Vec<(&'static str, &'static str)>,
    /// Settings of both the API and the worker, e.g. where KMS is.
    pub shared_settings: Vec<(&'static str, String)>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            standin: StandInConfig::fast_for_tests(),
            statuses: Vec::new(),
            egress_allow: "127.0.0.0/8,::1/128",
            retry_schedule: "50ms,100ms,200ms,400ms",
            webhook_timeout: Duration::from_secs(10),
            endpoint_concurrency: 10,
            api_settings: Vec::new(),
            shared_settings: Vec::new(),
        }
    }
}

/// A listener on 127.0.0.1:`port` (0: any) that can take over a port just
/// closed, as a restarted process does.
pub async fn bind_reusable(port: u16) -> TcpListener {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // A process just stopped may take a moment to let its listener go.
    for _ in 0..50 {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        match socket.bind(address) {
            Ok(()) => return socket.listen(1024).expect("listening"),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot bind {address}: {error}"),
        }
    }
    panic!("{address} stayed in use");
}

/// The worker in a runtime of its own on its own thread: `kill` drops the
/// runtime, and with it every request in flight, as a killed process would
/// (nothing after the current await point runs; its connections close).
struct RunningWorker {
    port: u16,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningWorker {
    fn start(port: u16, settings: Arc<dyn Fn(u16) -> shared::settings::Settings + Send + Sync>) -> Self {
        let (started, port_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async {
                let listener = bind_reusable(port).await;
                let port = listener.local_addr().unwrap().port();
                let worker = Worker::build_on(listener, settings(port)).await.expect("the worker builds");
                tokio::spawn(worker.run_until_stopped(std::future::pending()));
                started.send(port).unwrap();
            });
            // Runs until killed (or the pipeline is dropped).
            let _ = stop_rx.recv();
            // Every task is dropped at its next await, as a killed process stops.
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        let port = port_rx.recv().expect("the worker starts");
        Self { port, stop: Some(stop), thread: Some(thread) }
    }

    fn kill(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn spawn_pipeline() -> Pipeline {
    spawn_pipeline_with(PipelineOptions::default()).await
}

pub async fn spawn_pipeline_with(options: PipelineOptions) -> Pipeline {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(0, options.statuses).await;
    let standin = CloudTasksStandIn::start(StandInConfig {
        authorization: Some(format!("Bearer {WORKER_SECRET}")),
        ..options.standin
    })
    .await
    .expect("the stand-in starts");
    let (database_url, database_name, endpoint) = (database.url.clone(), database.name.clone(), standin.endpoint());
    let shared_settings = options.shared_settings.clone();
    let worker_settings = Arc::new(move |port: u16| {
        let database = DatabaseRef { url: database_url.clone(), name: database_name.clone() };
        database.settings(|source| {
            source.set("EGRESS_ALLOW_CIDRS", options.egress_allow);
            source.set("WORKER_SHARED_SECRET", WORKER_SECRET);
            source.set("CLOUD_TASKS_ENDPOINT", endpoint.clone());
            source.set("WEBHOOK_WORKER_URL", worker_url(port));
            source.set("WEBHOOK_RETRY_SCHEDULE", options.retry_schedule);
            source.set("WEBHOOK_TIMEOUT_SECONDS", options.webhook_timeout.as_secs().to_string());
            source.set("WEBHOOK_ENDPOINT_CONCURRENCY", options.endpoint_concurrency.to_string());
            for (name, value) in &shared_settings {
                source.set(name, value.clone());
            }
        })
    });
    let worker = RunningWorker::start(0, worker_settings.clone());
    let (endpoint, push_url) = (standin.endpoint(), worker_url(worker.port));
    let app = spawn_app_on(database, |source, _| {
        source.set("CLOUD_TASKS_ENDPOINT", endpoint);
        source.set("WEBHOOK_WORKER_URL", push_url);
        source.set("ALLOW_HTTP_ENDPOINTS", "true");
        // So the API accepts the receiver's loopback URLs as targets (whatever the worker may reach).
        source.set("EGRESS_ALLOW_CIDRS", "127.0.0.0/8,::1/128");
        for (name, value) in options.api_settings {
            source.set(name, value);
        }
        for (name, value) in options.shared_settings {
            source.set(name, value);
        }
    })
    .await;
    Pipeline { app, standin, receiver, worker_url: worker_url(worker.port), worker, worker_settings }
}

fn worker_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/tasks/deliver")
}

/// The test database by name, for settings made on the worker's thread.
struct DatabaseRef {
    url: String,
    name: String,
}

impl DatabaseRef {
    fn settings(&self, configure: impl FnOnce(&mut shared::settings::SettingsSource)) -> shared::settings::Settings {
        crate::settings_for(&self.url, &self.name, &redis_url(), configure)
    }
}

impl Pipeline {
    /// Kills the worker as `kill -9` would: requests in flight die where they are.
    pub fn kill_worker(&mut self) {
        self.worker.kill();
    }

    /// Starts a worker again on the same port, as Cloud Run would.
    pub fn restart_worker(&mut self) {
        self.worker.kill();
        self.worker = RunningWorker::start(self.worker.port, self.worker_settings.clone());
    }

    /// An agent whose endpoint is the receiver.
    pub async fn agent(&self) -> TestAgent {
        self.app.register_agent(json!({"endpoint_url": self.receiver.url("/agent")})).await
    }

    /// A client: its signing key and its registration answer (with `webhook_secret`).
    pub async fn client(&self) -> (crate::RequestSigner, Value) {
        self.app.register_client().await
    }

    /// Pushes attempt `attempt` of a delivery's generation 0 to the worker as Cloud Tasks would.
    pub async fn push(&self, delivery_id: &str, attempt: u32) -> reqwest::Response {
        self.app
            .http
            .post(&self.worker_url)
            .header("authorization", format!("Bearer {WORKER_SECRET}"))
            .header("x-cloudtasks-queuename", "webhook-delivery")
            .json(&json!({"delivery_id": delivery_id, "generation": 0, "attempt": attempt}))
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
    pub at: tokio::time::Instant,
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
    /// The statuses actually answered, in order (a held request has none).
    answered: Mutex<Vec<u16>>,
    /// `Retry-After` (seconds) sent with every answer that is not a 2xx.
    retry_after: Mutex<Option<u64>>,
    /// How long each answer takes.
    delay: Mutex<Duration>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

/// A local HTTP server standing for agents' endpoints and clients' callbacks.
pub struct Receiver {
    port: u16,
    state: Arc<ReceiverState>,
    server: JoinHandle<()>,
}

impl Receiver {
    /// On 127.0.0.1:`port` (0: any free port).
    pub async fn start(port: u16, statuses: Vec<u16>) -> Self {
        let state = Arc::new(ReceiverState { statuses: Mutex::new(statuses), ..ReceiverState::default() });
        let (port, server) = Self::serve(port, state.clone()).await;
        Self { port, state, server }
    }

    async fn serve(port: u16, state: Arc<ReceiverState>) -> (u16, JoinHandle<()>) {
        let listener = bind_reusable(port).await;
        let port = listener.local_addr().unwrap().port();
        let router = Router::new().route("/{*path}", post(receive)).with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (port, server)
    }

    /// Answers again on the same port after `stop`.
    pub async fn restart(&mut self) {
        self.server.abort();
        (_, self.server) = Self::serve(self.port, self.state.clone()).await;
    }

    /// Sends `Retry-After: seconds` with every answer that is not a 2xx.
    pub fn set_retry_after(&self, seconds: u64) {
        *self.state.retry_after.lock().unwrap() = Some(seconds);
    }

    /// Takes `delay` over each answer from now on.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// The most requests that were ever being answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.state.in_flight.lock().unwrap().1
    }

    /// The statuses answered so far, in order.
    pub fn answered(&self) -> Vec<u16> {
        self.state.answered.lock().unwrap().clone()
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
) -> Response {
    let at = tokio::time::Instant::now();
    state.received.lock().unwrap().push(Received { at, path: format!("/{path}"), headers, body });
    {
        let mut in_flight = state.in_flight.lock().unwrap();
        in_flight.0 += 1;
        in_flight.1 = in_flight.1.max(in_flight.0);
    }
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    state.in_flight.lock().unwrap().0 -= 1;
    let status = {
        let mut statuses = state.statuses.lock().unwrap();
        if statuses.is_empty() { 200 } else { statuses.remove(0) }
    };
    if status == NO_ANSWER {
        std::future::pending::<()>().await;
    }
    state.answered.lock().unwrap().push(status);
    let mut response = StatusCode::from_u16(status).unwrap_or(StatusCode::OK).into_response();
    let retry_after = *state.retry_after.lock().unwrap();
    if let (Some(seconds), false) = (retry_after, (200..300).contains(&status)) {
        response.headers_mut().insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}
