//! chromedriver as a child process: one per test, on a port it picks itself,
//! killed with every Chromium it started when dropped.
//!
//! chromedriver leads a process group of its own, and every Chromium it
//! launches (with its zygotes and renderers) stays in that group, so `Drop`
//! kills the group. Chromium talks to chromedriver over a pipe
//! (`--remote-debugging-pipe`, set by the profile), so a Chromium whose
//! chromedriver died exits too; and chromedriver gets SIGKILL when the thread
//! that started it ends (`PR_SET_PDEATHSIG`), so even a test process killed
//! outright (a nextest timeout) leaves no browser behind.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long chromedriver may take to say which port it took (a few ms here).
const READY_WITHIN: Duration = Duration::from_secs(20);

pub(super) const INSTALL: &str = "The console's browser tests drive headless Chromium through \
    chromedriver. On Debian or Ubuntu: apt-get install chromium chromium-driver \
    (.ci/run does this on CI).";

/// The Chromium and chromedriver the tests use: found on PATH, or one
/// clear failure naming what to install.
pub(super) struct Programs {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Programs {
    pub fn find() -> Self {
        let chromium = ["chromium", "chromium-browser"].into_iter().find_map(crate::find_on_path);
        let chromedriver = crate::find_on_path("chromedriver");
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Self { chromium, chromedriver },
            (chromium, chromedriver) => {
                let missing: Vec<&str> = [(chromium.is_none(), "chromium"), (chromedriver.is_none(), "chromedriver")]
                    .into_iter()
                    .filter_map(|(missing, name)| missing.then_some(name))
                    .collect();
                panic!("{} not on PATH. {INSTALL}", missing.join(" and "))
            }
        }
    }
}

/// A running chromedriver; killed, with its browsers, when dropped.
pub(super) struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start(chromedriver: &PathBuf) -> Self {
        let mut command = Command::new(chromedriver);
        command.arg("--port=0").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).process_group(0);
        crate::die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}. {INSTALL}", chromedriver.display()));
        let stdout = child.stdout.take().expect("chromedriver's stdout is piped");
        // Reads the port from "ChromeDriver was started successfully on port N.", then
        // keeps draining stdout (so chromedriver never blocks on it) until it exits.
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.split("successfully on port ").nth(1) {
                    let _ = port_tx.send(Ok(port.trim_end_matches('.').to_owned()));
                } else if lines.len() < 20 {
                    lines.push(line);
                }
            }
            let _ = port_tx.send(Err(lines.join("\n")));
        });
        let mut driver = Self { child, url: String::new() };
        match port_rx.recv_timeout(READY_WITHIN) {
            Ok(Ok(port)) => driver.url = format!("http://127.0.0.1:{port}"),
            Ok(Err(output)) => panic!("chromedriver exited before it listened:\n{output}\n{INSTALL}"),
            Err(_) => panic!("chromedriver did not start listening within {READY_WITHIN:?}"),
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is chromedriver's own (process_group(0)): its pid.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
        // The browsers die a moment after the signal; a caller that looks
        // right after the drop (or removes their profiles) must not see them.
        let deadline = std::time::Instant::now() + GONE_WITHIN;
        while group_has_live_processes(group) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// How long the killed group may take to be gone.
const GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a process of the group `group` still runs (zombies, which only
/// wait to be reaped, do not count).
fn group_has_live_processes(group: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { return false };
        // After the command in parentheses: state, parent pid, process group.
        let Some((_, fields)) = stat.rsplit_once(") ") else { return false };
        let mut fields = fields.split(' ');
        let (state, _parent, pgrp) = (fields.next(), fields.next(), fields.next());
        state != Some("Z") && pgrp.and_then(|pgrp| pgrp.parse::<libc::pid_t>().ok()) == Some(group)
    })
}
