//! A throwaway Postgres primary and its streaming replica: `initdb` in a
//! new temporary directory, the primary on a free port, then a
//! `pg_basebackup -R` of it started on another, following it by streaming.
//! Both run as the `postgres` OS user when this process is root (Postgres
//! refuses root), and both are stopped and their directory removed when the
//! [`Cluster`] is dropped. Used by the tests of public reads on a replica and
//! by `cargo xtask bench --only replica`.
//!
//! A primary of its own rather than a replica of the local Postgres: a base
//! backup of that would copy every other database on it (and need a
//! `replication` line in its `pg_hba.conf`, which a fresh machine lacks);
//! `initdb`'s own `pg_hba.conf` admits local replication.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, anyhow, bail};

/// One of the cluster's two servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Primary,
    Replica,
}

impl Server {
    /// Its data directory's name inside the cluster's directory.
    fn directory(self) -> &'static str {
        match self {
            Server::Primary => "primary",
            Server::Replica => "replica",
        }
    }
}

/// A running primary, and its replica once [`Cluster::start_replica_from_backup`] made it.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    primary_port: u16,
    replica_port: u16,
}

/// Tells apart the directories of clusters one process starts in the same instant.
static STARTED: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// `initdb` (trust authentication, user `postgres`) in a new temporary
    /// directory, and the primary started on a free port.
    pub fn start_primary() -> anyhow::Result<Cluster> {
        let bin = postgres_bin()?;
        let name = format!("pg-cluster-{}-{}", std::process::id(), STARTED.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Owned by the cluster from here: dropped (and removed) on any error below.
        let cluster = Cluster { bin, dir, primary_port: free_port()?, replica_port: free_port()? };
        if running_as_root() {
            run(Command::new("chown").arg("postgres:").arg(&cluster.dir), false)?;
        }
        let primary = cluster.data(Server::Primary);
        cluster.run("initdb", |command| {
            command.args(["-U", "postgres", "--auth=trust", "--no-sync", "-D"]).arg(&primary)
        })?;
        cluster.start(Server::Primary)?;
        Ok(cluster)
    }

    /// A base backup of the primary as it is now (`pg_basebackup -R`, so it
    /// streams from the primary from then on), started on its own port.
    pub fn start_replica_from_backup(&self) -> anyhow::Result<()> {
        let port = self.primary_port.to_string();
        // A fast checkpoint: the default spreads it over minutes.
        let arguments =
            ["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"];
        let replica = self.data(Server::Replica);
        self.run("pg_basebackup", |command| command.args(arguments).arg("-D").arg(&replica))?;
        self.start(Server::Replica)
    }

    pub fn port(&self, server: Server) -> u16 {
        match server {
            Server::Primary => self.primary_port,
            Server::Replica => self.replica_port,
        }
    }

    /// The URL of `database` on `server`, as user `postgres` over TCP (no TLS: loopback).
    pub fn url(&self, server: Server, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable", self.port(server))
    }

    /// Starts `server` (again) on its port.
    pub fn start(&self, server: Server) -> anyhow::Result<()> {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port(server), self.dir.display());
        let data = self.data(server);
        let log = data.with_extension("log");
        self.run("pg_ctl", |command| {
            command.args(["-w", "-D"]).arg(&data).arg("-l").arg(&log).args(["-o", &options, "start"])
        })
    }

    /// Stops `server` at once, as a crash would (`pg_ctl -m immediate`).
    pub fn stop_immediately(&self, server: Server) -> anyhow::Result<()> {
        let data = self.data(server);
        self.run("pg_ctl", |command| command.args(["-w", "-m", "immediate", "-D"]).arg(&data).arg("stop"))
    }

    /// The process id of `server`'s postmaster, from its `postmaster.pid`:
    /// the parent of every other process of that server.
    pub fn postmaster_pid(&self, server: Server) -> anyhow::Result<u32> {
        let file = self.data(server).join("postmaster.pid");
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        parse_postmaster_pid(&text).with_context(|| format!("no process id on the first line of {}", file.display()))
    }

    fn data(&self, server: Server) -> PathBuf {
        self.dir.join(server.directory())
    }

    /// Runs one of Postgres's programs, as `postgres` when we are root.
    fn run(&self, program: &str, arguments: impl FnOnce(&mut Command) -> &mut Command) -> anyhow::Result<()> {
        let mut command = Command::new(self.bin.join(program));
        arguments(&mut command);
        run(&mut command, true)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for server in [Server::Replica, Server::Primary] {
            if self.data(server).join("postmaster.pid").exists()
                && let Err(error) = self.stop_immediately(server)
            {
                eprintln!("the throwaway {server:?} did not stop: {error}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first line of a `postmaster.pid` file: the postmaster's process id.
fn parse_postmaster_pid(text: &str) -> Option<u32> {
    text.lines().next()?.trim().parse().ok()
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `command` to its end (as `postgres` when `switch_user` and we are
/// root); a failure carries its output.
fn run(command: &mut Command, switch_user: bool) -> anyhow::Result<()> {
    let program = command.get_program().to_owned();
    let output = if switch_user && running_as_root() {
        let arguments: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(arguments).output()
    } else {
        command.output()
    }
    .map_err(|error| anyhow!("cannot run {}: {error}", Path::new(&program).display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}{}",
            Path::new(&program).display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/*/bin` (Debian's layout).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return Ok(bin.into());
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .context("no Postgres under /usr/lib/postgresql (set PG_BIN to the directory of initdb and pg_ctl)")?;
    let newest = versions.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok()).max();
    let newest = newest.context("no Postgres version under /usr/lib/postgresql (or set PG_BIN)")?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin")))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postmaster_pid_is_the_first_line() {
        let file = "48213\n/tmp/pg-cluster-1-0/primary\n1733470000\n54321\n/tmp/pg-cluster-1-0\n127.0.0.1\n  5432001  32768\nready   \n";
        assert_eq!(parse_postmaster_pid(file), Some(48213));
        assert_eq!(parse_postmaster_pid(""), None);
        assert_eq!(parse_postmaster_pid("not a pid\n"), None);
    }
}
