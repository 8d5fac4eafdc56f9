//! Google's Pub/Sub emulator for the tests, and subscriptions read with the
//! official `google-cloud-pubsub` subscriber.
//!
//! One emulator serves every test process of a checkout: nextest runs each
//! test in a process of its own, so "once per test binary" has to be across
//! processes. The first process that needs it starts it (under `start.lock`
//! in [`state_dir`], so two never race) and writes its port to `state`; the
//! others find it there. Each process holds a shared lock on `users.lock` for
//! as long as it lives (the kernel drops it when the process exits, however
//! it ends). The emulator runs under a small shell watchdog in a process group
//! of its own; when nobody has held `users.lock` for [`IDLE_SECONDS`], the
//! watchdog takes `start.lock` (so no process joins meanwhile), removes
//! `state` and stops gcloud's process group, JVM included, and its own. So a
//! suite leaves no JVM behind: it stops a few seconds after the last test
//! process exits.
//!
//! Each test gets topics and subscriptions of its own, with unique names,
//! made through the crate's admin clients (REST) against the emulator.
//! Without `gcloud`, Java or the emulator component, [`emulator`] panics
//! saying what to install: a failure, never a skipped test.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use google_cloud_auth::credentials::anonymous;
use google_cloud_pubsub::client::{Subscriber, SubscriptionAdmin, TopicAdmin};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The project every test topic lives in (the settings' default project).
pub const PROJECT: &str = "local";

/// How long the emulator may take to answer after it was started (about 6 s
/// on this project's machines).
const READY_WITHIN: Duration = Duration::from_secs(90);

/// How long the emulator outlives the last test process that used it. Long
/// enough to bridge the gap between two test processes, short enough that a
/// finished suite leaves nothing running for long.
pub const IDLE_SECONDS: u32 = 5;

const INSTALL: &str = "The end-to-end tests publish to Google's Pub/Sub emulator \
    (`gcloud beta emulators pubsub start`), which needs the Google Cloud CLI, its \
    pubsub-emulator component and a Java runtime. On Debian or Ubuntu, with Google's \
    apt repository: apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator \
    default-jre-headless (.ci/run does this on CI).";

/// Starts the emulator and stops it when no test process has held
/// `users.lock` for `$3` seconds, or when it gets SIGTERM. Arguments: state
/// directory, port, seconds. The shell leads a process group of its own;
/// gcloud makes another (its own pid) for itself and the JVM. Stopping
/// signals both groups.
const WATCHDOG: &str = r#"
dir=$1 port=$2 idle_limit=$3
gcloud beta emulators pubsub start --host-port="127.0.0.1:$port" --project=local &
emulator=$!
stop=
trap 'stop=1' TERM
idle=0
while [ -z "$stop" ] && kill -0 "$emulator" 2>/dev/null; do
  sleep 1
  if flock -n -x "$dir/users.lock" true; then idle=$((idle + 1)); else idle=0; fi
  [ "$idle" -lt "$idle_limit" ] && continue
  # Decide under the start lock, so that no test process joins in between.
  exec 9>>"$dir/start.lock"
  flock -x 9
  if flock -n -x "$dir/users.lock" true; then
    [ "$(cat "$dir/state" 2>/dev/null)" = "$port" ] && rm -f "$dir/state"
    echo "watchdog: no test process for ${idle_limit}s: stopping the emulator on port $port"
    break
  fi
  exec 9>&-
  idle=0
done
trap '' TERM
kill -TERM "-$emulator" 2>/dev/null
kill -TERM "-$$"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  kill -0 "-$emulator" 2>/dev/null || break
  sleep 1
done
kill -KILL "-$emulator" 2>/dev/null
kill -KILL "-$$"
"#;

/// The running emulator, shared by the tests of this process (and of every
/// other test process of this checkout).
pub struct PubSubEmulator {
    port: u16,
    /// The shared lock on `users.lock`, held until the process exits.
    _user: File,
}

/// The shared emulator, started if no test process has started it yet.
///
/// # Panics
/// When it cannot be started (not installed, no Java, did not answer), with
/// what to install or what it printed; every test of the process that needs it
/// fails the same way.
pub async fn emulator() -> &'static PubSubEmulator {
    static EMULATOR: OnceLock<Result<PubSubEmulator, String>> = OnceLock::new();
    let joined = tokio::task::spawn_blocking(|| EMULATOR.get_or_init(join_or_start)).await;
    match joined.expect("starting the Pub/Sub emulator does not panic") {
        Ok(emulator) => emulator,
        Err(message) => panic!("{message}"),
    }
}

impl PubSubEmulator {
    /// The value for `PUBSUB_ENDPOINT` and the clients' `with_endpoint`: gRPC
    /// and REST share the port.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Where the processes of this checkout meet: the locks, `state` (the port)
/// and the emulator's output, `emulator.log`.
pub fn state_dir() -> PathBuf {
    let checkout = env!("CARGO_MANIFEST_DIR").replace(['/', '\\'], "_");
    std::env::temp_dir().join("agent-registry-pubsub-emulator").join(checkout)
}

fn join_or_start() -> Result<PubSubEmulator, String> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let start_lock = lock_file(&dir.join("start.lock"))?;
    flock(&start_lock, libc::LOCK_EX).map_err(|error| format!("cannot lock {}/start.lock: {error}", dir.display()))?;
    let user = lock_file(&dir.join("users.lock"))?;
    flock(&user, libc::LOCK_SH).map_err(|error| format!("cannot lock {}/users.lock: {error}", dir.display()))?;
    let running = std::fs::read_to_string(dir.join("state")).ok().and_then(|port| port.trim().parse().ok());
    let port = match running.filter(|&port| answers(port)) {
        Some(port) => port,
        None => {
            let port = start(&dir)?;
            std::fs::write(dir.join("state"), port.to_string())
                .map_err(|error| format!("cannot write {}/state: {error}", dir.display()))?;
            port
        }
    };
    drop(start_lock);
    Ok(PubSubEmulator { port, _user: user })
}

/// `flock(2)`, blocking: the lock `flock(1)` in the watchdog takes too.
/// (`File::lock` needs Rust 1.89; the workspace supports 1.88.) Released when
/// the file is closed, or the process ends.
fn flock(file: &File, operation: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

fn lock_file(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))
}

fn start(dir: &Path) -> Result<u16, String> {
    for program in ["gcloud", "java", "flock"] {
        if crate::find_on_path(program).is_none() {
            return Err(format!("`{program}` is not on PATH. {INSTALL}"));
        }
    }
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("no free port for the Pub/Sub emulator: {error}"))?
        .port();
    let log_path = dir.join("emulator.log");
    let log = File::create(&log_path).map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|error| error.to_string())?;
    let mut watchdog = Command::new("sh")
        .args(["-c", WATCHDOG, "pubsub-emulator-watchdog"])
        .arg(dir)
        .arg(port.to_string())
        .arg(IDLE_SECONDS.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own group: out of reach of the signals a test runner sends the
        // test's group, and stopped as one group by the watchdog.
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot run sh to start the Pub/Sub emulator: {error}"))?;
    let started = Instant::now();
    loop {
        if answers(port) {
            return Ok(port);
        }
        let output = || std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Ok(Some(status)) = watchdog.try_wait() {
            return Err(format!(
                "The Pub/Sub emulator stopped ({status}) before answering on port {port}. {INSTALL}\n\
                 Its output ({}):\n{}",
                log_path.display(),
                output()
            ));
        }
        if started.elapsed() > READY_WITHIN {
            // The watchdog stops the emulator on SIGTERM.
            let _ = Command::new("kill").args(["-TERM", &watchdog.id().to_string()]).status();
            return Err(format!(
                "The Pub/Sub emulator did not answer on port {port} within {READY_WITHIN:?}; it is being stopped. \
                 Its output ({}):\n{}",
                log_path.display(),
                output()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the emulator's REST API answers on `port`: the same question the
/// admin clients ask first.
fn answers(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /v1/projects/{PROJECT}/topics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).is_ok() && &status == b"HTTP/1.1 200"
}

/// One test's Pub/Sub: its own events and dead-letter topics (as the API is
/// configured with them) and an ordered subscription on each, read from the
/// moment they exist.
pub struct TestPubSub {
    endpoint: String,
    /// Full names, for `PUBSUB_EVENTS_TOPIC` and `PUBSUB_DEAD_LETTER_TOPIC`.
    pub events_topic: String,
    pub dead_letter_topic: String,
    /// What a downstream consumer of `registry-events` receives.
    pub events: Subscription,
    /// What operators receive from `webhook-dead-letter`.
    pub dead_letters: Subscription,
}

impl TestPubSub {
    pub async fn create() -> Self {
        let emulator = emulator().await;
        let endpoint = emulator.endpoint();
        let id = uuid::Uuid::new_v4().simple();
        let admin = Admin::connect(&endpoint).await;
        let events_topic = admin.topic(&format!("registry-events-{id}")).await;
        let dead_letter_topic = admin.topic(&format!("webhook-dead-letter-{id}")).await;
        let events = admin.ordered_subscription(&events_topic, &format!("registry-events-{id}-consumer")).await;
        let dead_letters =
            admin.ordered_subscription(&dead_letter_topic, &format!("webhook-dead-letter-{id}-ops")).await;
        Self {
            events: Subscription::start(&endpoint, events).await,
            dead_letters: Subscription::start(&endpoint, dead_letters).await,
            endpoint,
            events_topic,
            dead_letter_topic,
        }
    }

    /// Where the API publishes: `PUBSUB_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

/// The crate's admin clients (they speak REST) against the emulator.
pub struct Admin {
    topics: TopicAdmin,
    subscriptions: SubscriptionAdmin,
}

impl Admin {
    pub async fn connect(endpoint: &str) -> Self {
        let topics = TopicAdmin::builder()
            .with_endpoint(endpoint)
            .with_credentials(anonymous::Builder::new().build())
            .build()
            .await
            .expect("the topic admin client builds");
        let subscriptions = SubscriptionAdmin::builder()
            .with_endpoint(endpoint)
            .with_credentials(anonymous::Builder::new().build())
            .build()
            .await
            .expect("the subscription admin client builds");
        Self { topics, subscriptions }
    }

    /// Creates `projects/local/topics/{id}`; returns its full name.
    pub async fn topic(&self, id: &str) -> String {
        let name = format!("projects/{PROJECT}/topics/{id}");
        self.topics.create_topic().set_name(&name).send().await.unwrap_or_else(|error| panic!("{name}: {error:?}"));
        name
    }

    /// Creates `projects/local/subscriptions/{id}` on `topic` with message
    /// ordering on; returns its full name.
    pub async fn ordered_subscription(&self, topic: &str, id: &str) -> String {
        let name = format!("projects/{PROJECT}/subscriptions/{id}");
        self.subscriptions
            .create_subscription()
            .set_name(&name)
            .set_topic(topic)
            .set_enable_message_ordering(true)
            .set_ack_deadline_seconds(10)
            .send()
            .await
            .unwrap_or_else(|error| panic!("{name}: {error:?}"));
        name
    }
}

/// A message as a subscriber received it.
#[derive(Clone, PartialEq)]
pub struct PulledMessage {
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    /// Empty when the message has none.
    pub ordering_key: String,
    pub message_id: String,
}

/// Shows the data as text (what the project publishes is JSON), so that a
/// failed test says what arrived.
impl std::fmt::Debug for PulledMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulledMessage")
            .field("data", &String::from_utf8_lossy(&self.data))
            .field("attributes", &self.attributes)
            .field("ordering_key", &self.ordering_key)
            .field("message_id", &self.message_id)
            .finish()
    }
}

/// A subscription read by the official subscriber (streaming pull) in the
/// background: every message is recorded in arrival order, then acknowledged.
pub struct Subscription {
    pub name: String,
    received: Arc<watch::Sender<Vec<PulledMessage>>>,
    reader: JoinHandle<()>,
}

impl Subscription {
    pub async fn start(endpoint: &str, name: String) -> Self {
        let subscriber = Subscriber::builder()
            .with_endpoint(endpoint)
            .with_credentials(anonymous::Builder::new().build())
            .build()
            .await
            .expect("the subscriber builds");
        let received = Arc::new(watch::Sender::new(Vec::new()));
        let reader = tokio::spawn({
            let (received, name) = (received.clone(), name.clone());
            async move {
                let mut stream = subscriber.subscribe(&name).build();
                while let Some(next) = stream.next().await {
                    match next {
                        Ok((message, handler)) => {
                            received.send_modify(|received| {
                                received.push(PulledMessage {
                                    data: message.data.to_vec(),
                                    attributes: message.attributes.into_iter().collect(),
                                    ordering_key: message.ordering_key,
                                    message_id: message.message_id,
                                })
                            });
                            handler.ack();
                        }
                        Err(error) => eprintln!("subscriber of {name}: {error:?}"),
                    }
                }
            }
        });
        Self { name, received, reader }
    }

    /// Every message received so far, in arrival order (duplicates included:
    /// Pub/Sub delivers at least once).
    pub fn received(&self) -> Vec<PulledMessage> {
        self.received.borrow().clone()
    }

    /// Waits until at least `count` messages were received and returns all of
    /// them, in arrival order.
    ///
    /// # Panics
    /// When they do not arrive within `timeout`, showing what did.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<PulledMessage> {
        let mut receiver = self.received.subscribe();
        // The sender lives as long as `self`, so only the timeout ends the wait early.
        let arrived = tokio::time::timeout(timeout, receiver.wait_for(|all| all.len() >= count)).await.is_ok();
        let received = self.received();
        assert!(
            arrived,
            "expected {count} messages on {} within {timeout:?}, {} arrived: {received:#?}",
            self.name,
            received.len()
        );
        received
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
