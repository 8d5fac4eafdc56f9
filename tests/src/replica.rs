//! A throwaway Postgres primary and its streaming replica, for the tests of
//! public reads on a replica: `initdb` in a temporary directory, the
//! primary on a free port, `pg_basebackup -R` of it started on another.
//! Both run as the `postgres` OS user when the tests run as root (Postgres
//! refuses root), and both are stopped and their directories removed when
//! this is dropped.
//!
//! Its own primary rather than a replica of the shared local Postgres: a
//! base backup of that would copy every other test's database (and need a
//! `replication` line in its `pg_hba.conf`, which a fresh CI machine lacks);
//! `initdb`'s own `pg_hba.conf` admits local replication, and the copy of an
//! empty cluster takes a moment.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{TestDatabase, free_port, settings_for};

pub struct TestCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub primary_port: u16,
    pub replica_port: u16,
}

impl TestCluster {
    /// A primary with a migrated database named `database`, and its replica, both running.
    pub async fn start(database: &str) -> (Self, TestDatabase) {
        let bin = postgres_bin();
        let dir = std::env::temp_dir().join(format!("ar-replica-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("a temporary directory");
        let cluster = Self { bin, dir, primary_port: free_port(), replica_port: free_port() };
        as_postgres(Command::new("chown").arg("postgres:").arg(&cluster.dir), false);
        let primary = cluster.dir.join("primary");
        cluster
            .run("initdb", |command| command.args(["-U", "postgres", "--auth=trust", "--no-sync", "-D"]).arg(&primary));
        cluster.start_server(&primary, cluster.primary_port);
        let url = format!("postgres://postgres@127.0.0.1:{}/{database}", cluster.primary_port);
        let settings = settings_for(&url, database, &crate::redis_url(), |_| {});
        shared::db::migrate(&settings).await.expect("the primary's database is created and migrated");
        let replica = cluster.dir.join("replica");
        let port = cluster.primary_port.to_string();
        // A fast checkpoint: the default spreads it over minutes.
        let arguments =
            ["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"];
        cluster.run("pg_basebackup", |command| command.args(arguments).arg("-D").arg(&replica));
        cluster.start_replica();
        (cluster, TestDatabase { name: database.to_owned(), url })
    }

    pub fn replica_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.replica_port)
    }

    /// Stops the replica at once, as a crash would.
    pub fn kill_replica(&self) {
        self.stop(&self.dir.join("replica"));
    }

    pub fn start_replica(&self) {
        self.start_server(&self.dir.join("replica"), self.replica_port);
    }

    fn start_server(&self, data: &Path, port: u16) {
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.dir.display());
        let log = data.with_extension("log");
        self.run("pg_ctl", |command| {
            command.args(["-w", "-D"]).arg(data).arg("-l").arg(&log).args(["-o", &options, "start"])
        });
    }

    fn stop(&self, data: &Path) {
        as_postgres(
            Command::new(self.bin.join("pg_ctl")).args(["-w", "-m", "immediate", "-D"]).arg(data).arg("stop"),
            true,
        );
    }

    fn run(&self, program: &str, arguments: impl FnOnce(&mut Command) -> &mut Command) {
        let mut command = Command::new(self.bin.join(program));
        arguments(&mut command);
        assert!(as_postgres(&mut command, true), "{program} failed (see its output above)");
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for server in ["replica", "primary"] {
            let data = self.dir.join(server);
            if data.join("postmaster.pid").exists() {
                self.stop(&data);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `command` (as `postgres` when we are root); whether it succeeded.
fn as_postgres(command: &mut Command, switch_user: bool) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let status = if root && switch_user {
        let program = command.get_program().to_owned();
        let arguments: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        Command::new("runuser").args(["-u", "postgres", "--"]).arg(program).args(arguments).output()
    } else {
        command.output()
    };
    match status {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            eprintln!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            false
        }
        Err(error) => {
            eprintln!("cannot run {:?}: {error}", command.get_program());
            false
        }
    }
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/*/bin` (Debian's layout).
fn postgres_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return bin.into();
    }
    let versions =
        std::fs::read_dir("/usr/lib/postgresql").expect("Postgres's binaries (set PG_BIN to their directory)");
    let mut versions: Vec<_> =
        versions.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok()).collect();
    versions.sort_unstable();
    let newest = versions.last().expect("a Postgres under /usr/lib/postgresql (or set PG_BIN)");
    PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"))
}
