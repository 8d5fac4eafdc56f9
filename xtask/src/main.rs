//! `cargo xtask <command>`: one module per command. Every command that runs
//! other programs accepts `--dry-run`, which prints them in order and runs none.

mod axe;
mod bench;
mod build;
mod ci;
mod demo;
mod deploy;
mod dev;
#[cfg(test)]
mod docs_check;
mod events;
mod local;
mod prepare;
mod redrive;
mod runner;
mod test;
#[cfg(test)]
mod tidy;
mod tools;
mod venv;

use std::path::PathBuf;
use std::process::ExitCode;

use runner::Runner;

const USAGE: &str = "usage: cargo xtask <command> [--dry-run]

commands:
  dev       check Postgres and Redis, create and migrate the database, run the API,
            the webhook worker, Google's Pub/Sub emulator (with the topics and an
            ordered events subscription; the Pub/Sub stand-in when the emulator is
            not installed), the Cloud Tasks stand-in and a webhook receiver
  events    against a running `cargo xtask dev`: tail the ordered events subscription,
            one line per event (type, aggregate id, ordering key, sequence),
            acknowledging each, until Ctrl-C
  migrate   create the database if missing and apply pending migrations
  test      run every test (unit, integration, end-to-end)
  ci        what CI runs: fmt check, clippy -D warnings, sqlx offline data check, tests
  prepare   refresh the committed sqlx offline data (.sqlx/) from a migrated database
  demo      against a running `cargo xtask dev`: register an agent and a client, run a
            job, read its webhook deliveries; signs with shared::signing
            (--url, default http://127.0.0.1:8080)
  build     release binaries of api and webhook-worker; --images: also both container
            images with local Docker; --cloud-build: build and push the images with
            Cloud Build instead ([--env staging|production] [--project P] [--region R])
  deploy    deploy <staging|production> [--yes] [--allow-dirty] [--project P] [--region R]
            [--state-bucket B]: check tools and auth, build and push both images (tag =
            git SHA), run the migrations job, terraform apply with the image digests,
            wait for readiness, smoke-test /readyz and a signed request; rolls both
            services back to their previous revisions if a step fails; production
            needs --yes (or a y at the prompt)
  bench     release build, the box's ceiling by pgbench (select-only, one-row insert;
            needs postgresql-client), fresh database agent_registry_bench with
            --agents agents (default 100k), the services on ports 1808x, then load
            from a separate process: discovery, get-agent, create-job, discovery
            shapes with the page cache off, webhook deliveries, start-up and peak
            RSS against the targets and as ratios of the ceiling; discovery on a
            throwaway primary's streaming replica (CPU per page of the API, the
            primary and the replica; the lag /readyz reports); prints the tables,
            writes target/bench/latest.md
            ([--seconds S] [--connections N] [--jobs K] [--agents A] [--minutes M]
            [--only discovery,get-agent,create-job,uncached,deliveries,soak,original,replica]
            [--api PATH] [--worker PATH] [--repeat R: rounds of each scenario held to a ceiling, judged by most];
            original: the FastAPI service the API replaces, uvicorn with 2 workers,
            side by side with the API on the same traffic, and the ratios)
  redrive   (--agent agt_… | --client cli_…) --since <RFC 3339 time>: send again every
            delivery to the agent's endpoint (or the client's callbacks) that died since
            then, in batches of 1,000 (operator; needs only DATABASE_URL; the endpoint
            must be enabled); --dry-run counts them

--dry-run  print the commands that would run, in order, and run none (redrive: count only)";

const DEFAULT_URL: &str = "http://127.0.0.1:8080";

fn main() -> ExitCode {
    let root = project_root();
    runner::forget_cargo_run_variables();
    match run(root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", shared::error_chain::render(&*error));
            ExitCode::FAILURE
        }
    }
}

fn run(root: PathBuf) -> anyhow::Result<()> {
    let (mut dry_run, mut url, mut command) = (false, DEFAULT_URL.to_owned(), None);
    // The arguments of `build`, `deploy`, `bench` and `redrive`, which parse their own.
    let mut rest = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--url" => url = args.next().ok_or_else(|| anyhow::anyhow!("--url needs a value\n{USAGE}"))?,
            _ if command.is_none() && !arg.starts_with('-') => command = Some(arg),
            _ => rest.push(arg),
        }
    }
    if !matches!(command.as_deref(), Some("build" | "deploy" | "bench" | "redrive"))
        && let Some(arg) = rest.first()
    {
        if arg.starts_with("--") {
            anyhow::bail!("unknown option {arg}\n{USAGE}");
        }
        anyhow::bail!("unexpected argument {arg:?}\n{USAGE}");
    }
    // Settings read `.env` from the working directory: make it the project's.
    std::env::set_current_dir(&root)?;
    let runner = Runner::new(root, dry_run)?;
    match command.as_deref() {
        Some("dev") => dev::run(&runner),
        Some("migrate") => dev::migrate(&runner),
        Some("events") => events::run(&runner),
        Some("test") => test::run(&runner),
        Some("ci") => ci::run(&runner),
        Some("prepare") => prepare::run(&runner),
        Some("demo") => demo::run(&runner, &url),
        Some("build") => build::run(&runner, &rest),
        Some("deploy") => deploy::run(&runner, &rest),
        Some("bench") => bench::run(&runner, &rest),
        Some("redrive") => redrive::run(&runner, &rest),
        Some("help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// The checkout `cargo xtask` runs in: the `CARGO_MANIFEST_DIR` that
/// `cargo run` (or `cargo test`) sets at run time. The one compiled in is
/// only a fallback for a binary run by hand: checkouts that share a target
/// directory share one xtask binary, which cargo does not rebuild for
/// another checkout of the same sources, so a compiled-in path sent
/// `cargo xtask prepare` in one checkout to work on another.
fn project_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().expect("xtask lives in the workspace root").to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> String {
        std::fs::read_to_string(project_root().join(path)).unwrap()
    }

    /// The README promises these commands; each must exist.
    #[test]
    fn readme_commands_exist() {
        let readme = read("README.md");
        for line in readme.lines().filter(|line| line.trim_start().starts_with("cargo xtask ")) {
            let command = line.split_whitespace().nth(2).unwrap();
            assert!(USAGE.contains(&format!("\n  {command} ")), "README runs unknown `cargo xtask {command}`");
        }
        assert!(readme.contains("cargo xtask dev") && readme.contains("cargo xtask ci"));
    }

    /// A CTE that nothing references does not run, so a statement that
    /// sets `synchronous_commit` in one must also test it, or it would
    /// commit synchronously without anyone noticing.
    /// Every `.rs` file under the folders `crate_dirs` of the project.
    fn rust_sources(crate_dirs: &[&str]) -> Vec<PathBuf> {
        let mut sources = Vec::new();
        for crate_dir in crate_dirs {
            let mut dirs = vec![project_root().join(crate_dir)];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else if path.extension().is_some_and(|extension| extension == "rs") {
                        sources.push(path);
                    }
                }
            }
        }
        sources
    }

    #[test]
    fn async_commit_ctes_are_referenced() {
        let mut statements = 0;
        for path in rust_sources(&["api/src", "webhook-worker/src", "shared/src"]) {
            let text = std::fs::read_to_string(&path).unwrap();
            let defined = text.matches("WITH async_commit AS (SELECT set_config('synchronous_commit', ").count();
            let referenced = text.matches("EXISTS (SELECT FROM async_commit)").count();
            assert_eq!(defined, referenced, "{}: an async_commit CTE that no clause references", path.display());
            statements += defined;
        }
        assert!(
            statements >= 4,
            "the lease, its release, a success's record, the publisher's mark (the relay's BEGIN sets it): {statements}"
        );
    }

    /// anyhow's `{:#}` joins every cause's `Display`, and the Google crates'
    /// errors include their source in theirs: a cause then shows twice. Error
    /// chains go through `shared::error_chain`, which shows each cause once.
    #[test]
    fn error_chains_are_rendered_once() {
        let alternate = concat!(":#", "}"); // Not spelled out: this line would match.
        let mut offenders = Vec::new();
        for path in rust_sources(&[
            "api/src",
            "webhook-worker/src",
            "shared/src",
            "tests/src",
            "tests/pg-cluster/src",
            "xtask/src",
        ]) {
            if path.ends_with("shared/src/error_chain.rs") {
                continue; // It shows what `{:#}` does, to pin the difference.
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (number, line) in text.lines().enumerate() {
                if line.contains(alternate) && line.to_lowercase().contains("err") {
                    offenders.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "render error chains with shared::error_chain:\n{}", offenders.join("\n"));
    }

    /// CI must run what the README tells a newcomer to run.
    #[test]
    fn ci_runs_the_readme_test_command() {
        assert!(read(".ci/run").contains("cargo xtask ci"));
        assert!(read("README.md").contains("cargo xtask ci"));
    }
}
