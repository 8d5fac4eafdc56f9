//! The processes a bench run starts, their readiness and their peak RSS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A memory figure of a process from `/proc/<pid>/status`, in MB: `VmHWM`
/// (its peak resident set) or `VmRSS` (its resident set now).
pub(super) fn memory_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("cannot read /proc/<pid>/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/<pid>/status"))?;
    Ok(kb / 1024.0)
}

/// The processes the bench started; all are killed when this is dropped.
pub(super) struct Stack {
    dry_run: bool,
    logs: PathBuf,
    children: Vec<(&'static str, Child)>,
}

impl Stack {
    pub(super) fn new(dry_run: bool, logs: PathBuf) -> Self {
        Self { dry_run, logs, children: Vec::new() }
    }

    /// Starts `program` in `dir` (no `.env` there: only this environment
    /// counts), its output to `target/bench/logs/<name>.log`. It will listen
    /// on `port`, which must be free: if another process answered there, the
    /// waits would succeed and the bench would measure that process instead.
    pub(super) fn spawn(
        &mut self,
        name: &'static str,
        port: u16,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        dir: &Path,
    ) -> anyhow::Result<()> {
        let shown: Vec<String> = env.iter().map(|(name, value)| format!("{name}={value:?}")).collect();
        let line = format!("{} {} {}", shown.join(" "), program.display(), args.join(" "));
        if self.dry_run {
            println!("{} &  # logs: {}", line.trim_end(), self.logs.join(format!("{name}.log")).display());
            return Ok(());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            bail!("port {port}, where the bench starts the {name}, is in use by another process: stop it first");
        }
        eprintln!("$ {} &", line.trim_end());
        std::fs::create_dir_all(&self.logs)?;
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        self.children.push((name, child));
        Ok(())
    }

    fn check_running(&mut self, name: &str) -> anyhow::Result<()> {
        for (child_name, child) in &mut self.children {
            if *child_name == name
                && let Some(status) = child.try_wait()?
            {
                bail!("the {name} stopped ({status}); see {}", self.logs.join(format!("{name}.log")).display());
            }
        }
        Ok(())
    }

    /// Polls `GET path` every `every` until it answers 200 (30 s at most).
    pub(super) fn wait_ready(&mut self, name: &str, port: u16, path: &str, every: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_status(port, path) == Some(200) {
                return Ok(());
            }
            self.check_running(name)?;
            std::thread::sleep(every);
        }
        bail!("the {name} was not ready on :{port}{path} within 30 s")
    }

    pub(super) fn wait_listening(&mut self, name: &str, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            self.check_running(name)?;
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the {name} did not listen on :{port} within 30 s")
    }

    /// The running processes: (name, pid).
    pub(super) fn pids(&self) -> Vec<(&'static str, u32)> {
        self.children.iter().map(|(name, child)| (*name, child.id())).collect()
    }

    /// Reads the peak RSS of the process `name`, then stops it.
    pub(super) fn peak_rss_then_stop(&mut self, name: &str) -> anyhow::Result<f64> {
        let (_, child) = self
            .children
            .iter()
            .find(|(child_name, _)| *child_name == name)
            .with_context(|| format!("the {name} is not running"))?;
        let mb = memory_mb(child.id(), "VmHWM")?;
        self.stop(name);
        Ok(mb)
    }

    pub(super) fn stop(&mut self, name: &str) {
        for (_, child) in self.children.iter_mut().filter(|(child_name, _)| *child_name == name) {
            kill(child);
        }
        self.children.retain(|(child_name, _)| *child_name != name);
    }

    pub(super) fn stop_all(&mut self) {
        for (_, child) in &mut self.children {
            kill(child);
        }
        self.children.clear();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Kills `child` and the processes below it (uvicorn's workers), the
/// parent first so that it starts no new ones; waits for `child`.
fn kill(child: &mut Child) {
    let below = super::cpu::descendants_of(child.id());
    let _ = child.kill();
    for pid in below.into_iter().filter_map(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = child.wait();
}

/// `GET http://127.0.0.1:port/path`, its answer unread; `None` if nothing answers.
fn get(port: u16, path: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    Some(stream)
}

/// The status of `GET http://127.0.0.1:port/path`, or `None` if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut head = [0u8; 12];
    get(port, path)?.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The body of a 200 answer to `GET http://127.0.0.1:port/path` (one with a
/// `Content-Length`, as the API's JSON answers are); `None` otherwise.
pub(super) fn http_body(port: u16, path: &str) -> Option<String> {
    let mut answer = String::new();
    get(port, path)?.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200 ").then(|| body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_figures_are_read_from_proc() {
        let pid = std::process::id();
        let (now, peak) = (memory_mb(pid, "VmRSS").unwrap(), memory_mb(pid, "VmHWM").unwrap());
        assert!(now > 0.0 && peak >= now, "VmRSS {now} MB, VmHWM {peak} MB");
        assert!(memory_mb(pid, "Vm").is_err(), "a prefix of a field is not the field");
    }
}
