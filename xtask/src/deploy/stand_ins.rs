//! Stand-in `gcloud`, `docker`, `terraform` and `git` for the tests of
//! `cargo xtask deploy` and `build`: small shell scripts on a `PATH` of their
//! own that append their argv to a log and print canned answers. The smoke
//! test talks to a tiny HTTP server on a local port, whose URL the stand-in
//! `terraform output -raw api_url` prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::runner::Runner;

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
pub const API_DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const WORKER_DIGEST: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Every stand-in starts with this: log the call, then fail if the line
/// matches the shell pattern in `fail` (only shell built-ins: `PATH` holds
/// the stand-ins alone).
const PRELUDE: &str = r#"#!/bin/sh
name=${0##*/}
echo "$name $*" >> "@DIR@/log"
if [ -f "@DIR@/fail" ]; then
  read -r fail < "@DIR@/fail"
  case "$name $*" in $fail) echo "$name: failing as told" >&2; exit 1 ;; esac
fi
"#;

const GIT: &str = r#"case "$1" in
  rev-parse) echo @SHA@ ;;
  status) if [ -f "@DIR@/git-status" ]; then while read -r line; do echo "$line"; done < "@DIR@/git-status"; fi ;;
esac
"#;

const DOCKER: &str = r#"case "$1" in
  info) echo 27.0.0 ;;
  push) echo "$2" >> "@DIR@/pushed" ;;
esac
"#;

const TERRAFORM: &str = r#"case "$*" in
  *"output -raw api_url") printf '%s' "@URL@" ;;
esac
"#;

const GCLOUD: &str = r#"case "$*" in
  "auth print-access-token"*|"auth application-default print-access-token"*) echo ya29.stand-in ;;
  "projects describe"*) echo "$3" ;;
  "artifacts repositories describe"*) echo "projects/p/locations/r/repositories/$4" ;;
  "artifacts docker images describe"*)
    if [ -f "@DIR@/pushed" ]; then
      while read -r image; do
        if [ "$image" = "$5" ]; then
          case "$5" in */api:*) echo @API_DIGEST@ ;; *) echo @WORKER_DIGEST@ ;; esac
          exit 0
        fi
      done < "@DIR@/pushed"
    fi
    echo "ERROR: NOT_FOUND: $5" >&2; exit 1 ;;
  "run services describe"*latestCreatedRevisionName*) printf '%s\t%s\n' "$4-00002-new" "$4-00002-new" ;;
  "run services describe"*) echo "$4-00001-old" ;;
esac
"#;

/// A temporary directory with the stand-ins, removed on drop.
pub struct StandIns {
    dir: PathBuf,
    pub api: Api,
}

impl StandIns {
    pub fn new() -> Self {
        Self::with_api(serve_api(200))
    }

    pub fn with_api(api: Api) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-deploy-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stand_ins = Self { dir, api };
        for (tool, body) in [("git", GIT), ("docker", DOCKER), ("terraform", TERRAFORM), ("gcloud", GCLOUD)] {
            stand_ins.write_tool(tool, body);
        }
        stand_ins
    }

    pub fn write_tool(&self, tool: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let script = format!("{PRELUDE}{body}")
            .replace("@DIR@", &self.dir.display().to_string())
            .replace("@SHA@", SHA)
            .replace("@URL@", &self.api.url)
            .replace("@API_DIGEST@", API_DIGEST)
            .replace("@WORKER_DIGEST@", WORKER_DIGEST);
        let path = self.dir.join(tool);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn remove_tool(&self, tool: &str) {
        std::fs::remove_file(self.dir.join(tool)).unwrap();
    }

    /// Stand-in calls whose "<tool> <args>" matches this shell pattern fail.
    pub fn fail(&self, pattern: &str) {
        std::fs::write(self.dir.join("fail"), format!("{pattern}\n")).unwrap();
    }

    pub fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.join(name), contents).unwrap();
    }

    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    pub fn runner(&self, dry_run: bool) -> Runner {
        let runner = Runner::new(crate::project_root(), dry_run).unwrap();
        runner.sh.set_var("PATH", &self.dir);
        runner
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The API the smoke test calls: `/readyz` answers `readyz`, discovery 200,
/// a signed `POST /v1/clients` 201, anything else 404.
pub struct Api {
    url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

pub fn serve_api(readyz: u16) -> Api {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut signed) = (0, false);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                signed |= line.starts_with("signature-input:") || line.starts_with("signature:");
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let target = request_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            let status = match target.as_str() {
                "GET /readyz" => readyz,
                "GET /v1/agents?limit=1" => 200,
                "POST /v1/clients" if signed && body.starts_with(b"{") => 201,
                _ => 404,
            };
            seen.lock().unwrap().push(format!("{target}{}", if signed { " (signed)" } else { "" }));
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    Api { url, requests }
}
