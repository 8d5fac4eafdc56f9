//! The Cloud Tasks stand-in, driven by the official `google-cloud-tasks-v2`
//! client as production drives Cloud Tasks, dispatching to a receiver in the
//! test; and, in `pubsub`, the Pub/Sub stand-in, driven by the official
//! `google-cloud-pubsub` publisher.

mod pubsub;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{HttpMethod, HttpRequest, OidcToken, Task};
use serde_json::{Value, json};
use shared::delivery_tasks::{DeliveryTasks, Push};
use shared::domain::DeliveryId;
use shared::settings::CloudTasksSettings;
use tests::cloud_tasks::{CloudTasksStandIn, StandInConfig};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const QUEUE: &str = "projects/demo-project/locations/us-west1/queues/webhook-delivery";
const IDLE: Duration = Duration::from_secs(4);

#[derive(Clone)]
struct Received {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// What the receiver answers: a status and maybe a `Retry-After`.
type Answer = (StatusCode, Option<&'static str>);

struct ReceiverState {
    scripted: Mutex<VecDeque<Answer>>,
    then: StatusCode,
    received: Mutex<Vec<Received>>,
}

/// A dispatch target answering `scripted` in order, then always `then`.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(scripted: impl IntoIterator<Item = Answer>, then: StatusCode) -> Self {
        let state = Arc::new(ReceiverState {
            scripted: Mutex::new(scripted.into_iter().collect()),
            then,
            received: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/internal/webhook-dispatch", axum::routing::any(answer))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/internal/webhook-dispatch", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn answer(State(state): State<Arc<ReceiverState>>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    state.received.lock().unwrap().push(Received { method, headers, body });
    let (status, retry_after) = state.scripted.lock().unwrap().pop_front().unwrap_or((state.then, None));
    match retry_after {
        Some(seconds) => (status, [(RETRY_AFTER, seconds)]).into_response(),
        None => status.into_response(),
    }
}

async fn client(standin: &CloudTasksStandIn) -> CloudTasks {
    CloudTasks::builder()
        .with_endpoint(standin.endpoint())
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .expect("the client builds")
}

/// A task shaped like the enqueuer's: a signed-off JSON POST with an OIDC token.
fn webhook_task(url: &str) -> Task {
    let request = HttpRequest::new()
        .set_url(url)
        .set_http_method(HttpMethod::Post)
        .set_headers([
            ("Content-Type", "application/json"),
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ])
        .set_body(br#"{"delivery_id":"d-1"}"#.to_vec())
        .set_oidc_token(
            OidcToken::new()
                .set_service_account_email("tasks@demo-project.iam.gserviceaccount.com")
                .set_audience("https://worker.example.run.app"),
        );
    Task::new().set_http_request(request)
}

async fn create(client: &CloudTasks, task: Task) -> google_cloud_tasks_v2::Result<Task> {
    client.create_task().set_parent(QUEUE).set_task(task).send().await
}

/// The canonical code name (e.g. `ALREADY_EXISTS`) of a service error.
fn code(error: &google_cloud_tasks_v2::Error) -> String {
    error.status().map(|status| status.code.to_string()).unwrap_or_else(|| format!("not a service error: {error}"))
}

#[tokio::test]
async fn a_created_task_is_dispatched_as_cloud_tasks_would() {
    let config =
        StandInConfig { authorization: Some("Bearer oidc-stand-in".into()), ..StandInConfig::fast_for_tests() };
    let standin = CloudTasksStandIn::start(config).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let before = OffsetDateTime::now_utc();

    let name = format!("{QUEUE}/tasks/delivery-1");
    let created = create(&client(&standin).await, webhook_task(&receiver.url).set_name(&name)).await.unwrap();
    assert_eq!(created.name, name);
    assert_eq!(created.dispatch_count, 0);
    assert!(created.schedule_time.is_some() && created.create_time.is_some());
    assert!(created.http_request().is_some_and(|request| request.url == receiver.url));

    assert!(standin.wait_idle(IDLE).await);
    let [request] = &receiver.received()[..] else { panic!("one request") };
    assert_eq!(request.method, Method::POST);
    assert_eq!(&request.body[..], br#"{"delivery_id":"d-1"}"#);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("traceparent"), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    assert_eq!(request.header("user-agent"), Some("Google-Cloud-Tasks"));
    assert_eq!(request.header("authorization"), Some("Bearer oidc-stand-in"));
    assert_eq!(request.header("x-cloudtasks-queuename"), Some("webhook-delivery"));
    assert_eq!(request.header("x-cloudtasks-taskname"), Some("delivery-1"));
    assert_eq!(request.header("x-cloudtasks-taskretrycount"), Some("0"));
    assert_eq!(request.header("x-cloudtasks-taskexecutioncount"), Some("0"));
    assert_eq!(request.header("x-cloudtasks-taskpreviousresponse"), None);
    assert_eq!(request.header("x-cloudtasks-taskretryreason"), None);
    let eta: f64 = request.header("x-cloudtasks-tasketa").unwrap().parse().unwrap();
    assert!((eta - before.unix_timestamp() as f64).abs() < 5.0, "ETA {eta} is the creation time");

    let [task] = &standin.created_tasks()[..] else { panic!("one created task") };
    assert_eq!(
        (task.name.as_str(), task.method.as_str(), task.url.as_str()),
        (name.as_str(), "POST", receiver.url.as_str())
    );
    assert_eq!(task.body, br#"{"delivery_id":"d-1"}"#);
    assert_eq!(task.headers["Content-Type"], "application/json");
    assert_eq!(task.oidc_token.as_ref().unwrap()["audience"], "https://worker.example.run.app");
    let [attempt] = &standin.attempts()[..] else { panic!("one attempt") };
    assert_eq!((attempt.task.as_str(), attempt.attempt, &attempt.response), (name.as_str(), 1, &Ok(200)));
}

#[tokio::test]
async fn a_task_name_is_taken_while_pending_and_after_it_ran() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let client = client(&standin).await;
    let task = webhook_task(&receiver.url).set_name(format!("{QUEUE}/tasks/delivery-2"));

    create(&client, task.clone()).await.unwrap();
    let pending = create(&client, task.clone()).await.unwrap_err();
    assert_eq!(code(&pending), "ALREADY_EXISTS");
    assert_eq!(pending.http_status_code(), Some(409));
    assert!(standin.wait_idle(IDLE).await);
    assert_eq!(code(&create(&client, task).await.unwrap_err()), "ALREADY_EXISTS");
    assert_eq!(receiver.received().len(), 1);

    // Unnamed tasks get a fresh name each.
    let first = create(&client, webhook_task(&receiver.url)).await.unwrap();
    let second = create(&client, webhook_task(&receiver.url)).await.unwrap();
    assert!(first.name.starts_with(&format!("{QUEUE}/tasks/")));
    assert_ne!(first.name, second.name);
}

#[tokio::test]
async fn failed_attempts_are_retried_with_backoff_until_one_succeeds() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let receiver = Receiver::start(
        [(StatusCode::INTERNAL_SERVER_ERROR, None), (StatusCode::INTERNAL_SERVER_ERROR, None)],
        StatusCode::OK,
    )
    .await;
    create(&client(&standin).await, webhook_task(&receiver.url)).await.unwrap();

    assert!(standin.wait_idle(IDLE).await);
    let received = receiver.received();
    let header = |name: &str| received.iter().map(|request| request.header(name)).collect::<Vec<_>>();
    assert_eq!(header("x-cloudtasks-taskretrycount"), [Some("0"), Some("1"), Some("2")]);
    assert_eq!(header("x-cloudtasks-taskexecutioncount"), [Some("0"), Some("1"), Some("2")]);
    assert_eq!(header("x-cloudtasks-taskpreviousresponse"), [None, Some("500"), Some("500")]);
    assert_eq!(header("x-cloudtasks-taskretryreason"), [None, Some("HTTP 500"), Some("HTTP 500")]);

    let attempts = standin.attempts();
    let responses: Vec<_> = attempts.iter().map(|attempt| (attempt.attempt, attempt.response.clone())).collect();
    assert_eq!(responses, [(1, Ok(500)), (2, Ok(500)), (3, Ok(200))]);
    // fast_for_tests: 50 ms, then 100 ms.
    assert!(attempts[1].at - attempts[0].at >= Duration::from_millis(50));
    assert!(attempts[2].at - attempts[1].at >= Duration::from_millis(100));
}

#[tokio::test]
async fn a_task_that_always_fails_is_dropped_after_max_attempts() {
    let config = StandInConfig { max_attempts: 5, ..StandInConfig::fast_for_tests() };
    let standin = CloudTasksStandIn::start(config).await.unwrap();
    let receiver = Receiver::start([], StatusCode::INTERNAL_SERVER_ERROR).await;
    let task = create(&client(&standin).await, webhook_task(&receiver.url)).await.unwrap();

    assert!(standin.wait_idle(IDLE).await);
    let attempts = standin.attempts();
    assert_eq!(attempts.iter().map(|attempt| attempt.attempt).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(attempts.iter().all(|attempt| attempt.task == task.name && attempt.response == Ok(500)));
    assert_eq!(receiver.received().len(), 5);
}

#[tokio::test]
async fn no_response_within_the_dispatch_deadline_is_a_failed_attempt() {
    let config = StandInConfig { max_attempts: 2, ..StandInConfig::fast_for_tests() };
    let standin = CloudTasksStandIn::start(config).await.unwrap();
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/internal/webhook-dispatch", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    // dispatchDeadline and scheduleTime have no setter reachable without
    // google-cloud-wkt; the model's JSON form sets them.
    let task: Task =
        serde_json::from_value(json!({"dispatchDeadline": "0.2s", "httpRequest": {"url": url, "httpMethod": "POST"}}))
            .unwrap();
    create(&client(&standin).await, task).await.unwrap();

    assert!(standin.wait_idle(IDLE).await);
    let attempts = standin.attempts();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|attempt| attempt.response == Err("no response within 200ms".into())), "{attempts:?}");
}

#[tokio::test]
async fn an_outage_makes_create_task_unavailable_until_it_ends() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let client = client(&standin).await;

    standin.set_available(false);
    let error = create(&client, webhook_task(&receiver.url)).await.unwrap_err();
    assert_eq!(code(&error), "UNAVAILABLE");
    assert_eq!(error.http_status_code(), Some(503));
    assert!(standin.created_tasks().is_empty());

    standin.set_available(true);
    create(&client, webhook_task(&receiver.url)).await.unwrap();
    assert!(standin.wait_idle(IDLE).await);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn retry_after_sets_the_least_wait_before_the_next_attempt() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let receiver = Receiver::start([(StatusCode::SERVICE_UNAVAILABLE, Some("1"))], StatusCode::OK).await;
    create(&client(&standin).await, webhook_task(&receiver.url)).await.unwrap();

    assert!(standin.wait_idle(IDLE).await);
    let attempts = standin.attempts();
    assert_eq!(attempts.iter().map(|attempt| attempt.response.clone()).collect::<Vec<_>>(), [Ok(503), Ok(200)]);
    // The queue's own backoff would have waited 50 ms.
    assert!(attempts[1].at - attempts[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_scheduled_task_can_be_read_and_deleted_before_it_runs() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let client = client(&standin).await;
    let name = format!("{QUEUE}/tasks/later");
    let later = (OffsetDateTime::now_utc() + Duration::from_secs(30)).format(&Rfc3339).unwrap();
    let task: Task = serde_json::from_value(json!({
        "name": name,
        "scheduleTime": later,
        "httpRequest": {"url": receiver.url, "body": "e30="},
    }))
    .unwrap();
    create(&client, task.clone()).await.unwrap();

    let fetched = client.get_task().set_name(&name).send().await.unwrap();
    assert_eq!(fetched.name, name);
    assert_eq!(serde_json::to_value(&fetched).unwrap()["scheduleTime"], Value::from(later));
    client.delete_task().set_name(&name).send().await.unwrap();
    assert_eq!(code(&client.get_task().set_name(&name).send().await.unwrap_err()), "NOT_FOUND");
    assert!(standin.wait_idle(Duration::from_millis(100)).await);
    assert!(receiver.received().is_empty());
    assert_eq!(code(&create(&client, task).await.unwrap_err()), "ALREADY_EXISTS");
}

#[tokio::test]
async fn bad_requests_get_google_style_errors() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let http = reqwest::Client::new();

    let malformed =
        http.post(format!("{}/v2/{QUEUE}/tasks", standin.endpoint())).body("{not json").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_u64(), body["error"]["status"].as_str()),
        (Some(400), Some("INVALID_ARGUMENT"))
    );

    let unknown = http.get(format!("{}/v2/{QUEUE}", standin.endpoint())).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn dispatches_start_no_faster_than_the_queue_rate() {
    let config = StandInConfig { max_dispatches_per_second: 10, ..StandInConfig::fast_for_tests() };
    let standin = CloudTasksStandIn::start(config).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let client = client(&standin).await;
    for _ in 0..5 {
        create(&client, webhook_task(&receiver.url)).await.unwrap();
    }

    assert!(standin.wait_idle(IDLE).await);
    let mut starts: Vec<_> = standin.attempts().iter().map(|attempt| attempt.at).collect();
    starts.sort();
    assert_eq!(starts.len(), 5);
    // 10 per second is a start every 100 ms, so 400 ms from first to last;
    // the margin absorbs a late first start on a busy machine (unlimited, the
    // five would start within a few milliseconds).
    assert!(starts[4] - starts[0] >= Duration::from_millis(300), "{:?}", starts[4] - starts[0]);
}

#[tokio::test]
async fn each_queue_has_its_own_dispatch_rate() {
    let config = StandInConfig { max_dispatches_per_second: 5, ..StandInConfig::fast_for_tests() };
    let standin = CloudTasksStandIn::start(config).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let client = client(&standin).await;
    let second_queue = format!("{QUEUE}-1");
    for _ in 0..4 {
        create(&client, webhook_task(&receiver.url)).await.unwrap();
        client.create_task().set_parent(&second_queue).set_task(webhook_task(&receiver.url)).send().await.unwrap();
    }

    assert!(standin.wait_idle(IDLE).await);
    let attempts = standin.attempts();
    let span = |queue: &str| {
        let starts: Vec<_> = attempts
            .iter()
            .filter(|attempt| attempt.task.strip_prefix(queue).is_some_and(|rest| rest.starts_with("/tasks/")))
            .map(|attempt| attempt.at)
            .collect();
        assert_eq!(starts.len(), 4, "{queue}");
        (*starts.iter().min().unwrap(), *starts.iter().max().unwrap())
    };
    let (first, second) = (span(QUEUE), span(&second_queue));
    // 5 per second is a start every 200 ms: 600 ms for each queue's four.
    assert!(first.1 - first.0 >= Duration::from_millis(450), "{:?}", first.1 - first.0);
    assert!(second.1 - second.0 >= Duration::from_millis(450), "{:?}", second.1 - second.0);
    // One rate shared by both queues would space all eight over 1,400 ms.
    let whole = first.1.max(second.1) - first.0.min(second.0);
    assert!(whole < Duration::from_millis(1_200), "the queues ran one after the other: {whole:?}");
}

/// The enqueuer over several queues: each delivery's tasks go to the queue
/// its id picks, and a task made before the number of queues changed is
/// still found (so the sweep does not send that delivery twice).
#[tokio::test]
async fn delivery_tasks_keep_to_their_queue_and_are_found_after_the_count_changes() {
    let standin = CloudTasksStandIn::start(StandInConfig::fast_for_tests()).await.unwrap();
    let receiver = Receiver::start([], StatusCode::OK).await;
    let settings = |queue_count| CloudTasksSettings {
        queue: QUEUE.to_owned(),
        queue_count,
        endpoint: Some(standin.endpoint()),
        invoker_service_account: None,
        worker_url: receiver.url.clone(),
    };
    let one_queue = DeliveryTasks::connect(settings(1)).await.unwrap();
    let three_queues = DeliveryTasks::connect(settings(3)).await.unwrap();
    let later = Some(OffsetDateTime::now_utc() + Duration::from_secs(3600));

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let push = Push { delivery_id: DeliveryId::generate(), generation: 0, attempt: Some(1) };
        let name = push.task_name(None);
        three_queues.create(&name, &push, later, None).await.unwrap();
        let queue = three_queues.queue_of(push.delivery_id);
        let created = standin.created_tasks().pop().unwrap().name;
        assert_eq!(created, format!("{queue}/tasks/{name}"));
        assert!(three_queues.exists(push.delivery_id, &name).await.unwrap());
        seen.insert(queue.to_owned());
    }
    assert!(seen.len() >= 2, "thirty deliveries all picked {seen:?}");
    assert!(seen.iter().all(|queue| [QUEUE.to_owned(), format!("{QUEUE}-1"), format!("{QUEUE}-2")].contains(queue)));

    // Made while there was one queue; looked up once there are three.
    let moved = std::iter::repeat_with(DeliveryId::generate)
        .find(|delivery| three_queues.queue_of(*delivery) != QUEUE)
        .unwrap();
    let push = Push { delivery_id: moved, generation: 0, attempt: Some(1) };
    let name = push.task_name(None);
    one_queue.create(&name, &push, later, None).await.unwrap();
    assert_eq!(standin.created_tasks().pop().unwrap().name, format!("{QUEUE}/tasks/{name}"));
    assert!(three_queues.exists(moved, &name).await.unwrap(), "found in the queue it was made in");
    assert!(!three_queues.exists(moved, "never-created").await.unwrap());
}
