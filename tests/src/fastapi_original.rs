//! The FastAPI original (`xtask/bench/fastapi_original/`, the service the
//! API replaces) as a process, for the side-by-side smoke test: uvicorn with
//! two workers, as the bench runs it, from the virtualenv `cargo xtask test`
//! makes and names in `FASTAPI_ORIGINAL_VENV`, on a free port against a
//! test's database. In a process group of its own, killed as a whole on
//! drop; its master also gets SIGKILL if the test's thread ends first
//! (`PR_SET_PDEATHSIG`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TestDatabase, free_port, redis_url};

const APP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xtask/bench/fastapi_original");
/// Python imports FastAPI, Pydantic and asyncpg in each worker first.
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct FastApiOriginal {
    pub base_url: String,
    child: Child,
    log: PathBuf,
}

impl FastApiOriginal {
    /// Starts it on `database` and waits until its `/readyz` answers 200.
    pub async fn start(database: &TestDatabase) -> Self {
        let venv = std::env::var_os("FASTAPI_ORIGINAL_VENV").unwrap_or_else(|| {
            panic!(
                "FASTAPI_ORIGINAL_VENV is not set: run the tests with `cargo xtask test`, which makes the FastAPI \
                 original's virtualenv (xtask/bench/fastapi_original/requirements.txt) and names it there"
            )
        });
        let port = free_port();
        let log = std::env::temp_dir().join(format!("fastapi-original-{}.log", database.name));
        let output = std::fs::File::create(&log).expect("a log file for the FastAPI original");
        let mut command = Command::new(PathBuf::from(venv).join("bin/uvicorn"));
        command
            .args(["main:app", "--app-dir", APP_DIR, "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--workers", "2", "--no-access-log", "--log-level", "warning"])
            .env("DATABASE_URL", &database.url)
            .env("REDIS_URL", redis_url())
            .env("REDIS_KEY_PREFIX", format!("{}:original:", database.name))
            .env("RATE_LIMIT_DISCOVERY_CAPACITY", "100000")
            .env("RATE_LIMIT_READ_CAPACITY", "100000")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("the log file"))
            .stderr(output)
            .process_group(0);
        crate::die_with_parent(&mut command);
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start uvicorn: {error}"));
        let mut original = Self { base_url: format!("http://127.0.0.1:{port}"), child, log };
        original.wait_ready().await;
        original
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("uvicorn exited ({status}):\n{}", self.log_text());
            }
            let ready = http.get(format!("{}/readyz", self.base_url)).send().await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the FastAPI original was not ready within {READY_WITHIN:?}:\n{}", self.log_text());
    }

    /// What uvicorn and the app printed (warnings and errors).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FastApiOriginal {
    fn drop(&mut self) {
        // The group is uvicorn's own (process_group(0)): its pid; the workers are in it.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
