//! What the tests need besides cargo, for `cargo xtask test` and `cargo
//! xtask ci`: the Python test tools (`tests/scripts/requirements.txt`) in a
//! virtualenv of their own ([`venv`]), made on first use and put first on
//! `PATH`; the FastAPI original's virtualenv, which the side-by-side smoke
//! test starts uvicorn from (named to it in `FASTAPI_ORIGINAL_VENV`);
//! Google's Pub/Sub emulator with Java, which the end-to-end tests publish
//! to; and the browser tests' axe-core from npm (`axe.rs`). What cannot be
//! made in user space (Python itself, the emulator, Java)
//! is checked up front and named in one message, with how to install it per
//! system, instead of failing tests one by one. (`.ci/run` installs those
//! system packages on CI; a developer's machine is left to its owner.)

use std::process::{Command, Stdio};

use crate::runner::Runner;
use crate::venv::{self, FASTAPI_ORIGINAL, TEST_TOOLS};

/// The variable naming the FastAPI original's virtualenv to the tests.
pub const FASTAPI_ORIGINAL_VENV: &str = "FASTAPI_ORIGINAL_VENV";

/// Checks the system's tools, then makes (if missing) the virtualenvs, puts
/// the test tools' `bin/` first on the `PATH` of every command the runner
/// runs and names the FastAPI original's in `FASTAPI_ORIGINAL_VENV`; then
/// axe-core.
pub fn provide(runner: &Runner) -> anyhow::Result<()> {
    let made = TEST_TOOLS.is_complete(runner)? && FASTAPI_ORIGINAL.is_complete(runner)?;
    runner.step("check that Python 3 (and, to make the virtualenvs, its venv module), Java and Google's Pub/Sub emulator are installed", || {
        match missing(&Found::here(), made) {
            None => Ok(()),
            Some(message) => anyhow::bail!(message),
        }
    })?;
    let bin = TEST_TOOLS.provide(runner)?.join("bin");
    let original = FASTAPI_ORIGINAL.provide(runner)?;
    runner.step(&format!("put {} first on PATH (the tests' python3, schemathesis)", bin.display()), || Ok(()))?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))?;
    runner.sh.set_var("PATH", path);
    runner.step(
        &format!("{FASTAPI_ORIGINAL_VENV}={} (the side-by-side smoke test's uvicorn)", original.display()),
        || Ok(()),
    )?;
    runner.sh.set_var(FASTAPI_ORIGINAL_VENV, original);
    crate::axe::provision(runner)
}

/// What is on this machine, of what `provide` cannot install itself.
struct Found {
    python: bool,
    /// `python3 -m venv` works (Debian splits it into `python3-venv`).
    python_venv: bool,
    java: bool,
    gcloud: bool,
    emulator: bool,
    flock: bool,
}

impl Found {
    fn here() -> Self {
        let python = on_path("python3");
        let (java, gcloud) = (on_path("java"), on_path("gcloud"));
        Self {
            python,
            python_venv: python && venv::python_with_venv(),
            java,
            gcloud,
            emulator: gcloud && emulator_component(),
            flock: on_path("flock"),
        }
    }
}

/// One message naming each missing tool and how to install it, or `None`.
/// `venv_made`: the virtualenvs exist, so Python's venv module is not needed.
fn missing(found: &Found, venv_made: bool) -> Option<String> {
    let mut lacking = Vec::new();
    let mut debian = Vec::new();
    let mut macos = Vec::new();
    if !found.python || (!venv_made && !found.python_venv) {
        lacking.push("Python 3 with its venv module (the test tools run in a virtualenv)");
        debian.push("apt-get install python3 python3-venv");
        macos.push("brew install python");
    }
    if !found.java {
        lacking.push("a Java runtime (the Pub/Sub emulator runs on it)");
        debian.push("apt-get install default-jre-headless");
        macos.push("brew install openjdk");
    }
    if !found.gcloud || !found.emulator {
        lacking.push("the Google Cloud CLI with its beta and pubsub-emulator components");
        debian.push(
            "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator  \
             (from Google's apt repository: https://cloud.google.com/sdk/docs/install#deb)",
        );
        macos.push(
            "the Google Cloud CLI (https://cloud.google.com/sdk/docs/install#mac), then \
             gcloud components install beta pubsub-emulator",
        );
    }
    if !found.flock {
        lacking.push("flock (the tests share one emulator through a lock file)");
        debian.push("apt-get install util-linux");
        macos.push("brew install flock");
    }
    if lacking.is_empty() {
        return None;
    }
    Some(format!(
        "the tests need what is not installed here:\n{}\ninstall it, then run this again:\n  Debian or Ubuntu: {}\n  macOS: {}\n\
         (the end-to-end tests publish every event to the emulator; `.ci/run` installs all of this on CI)",
        lacking.iter().map(|what| format!("  - {what}")).collect::<Vec<_>>().join("\n"),
        debian.join("; "),
        macos.join("; "),
    ))
}

/// Whether `gcloud beta emulators pubsub` can run here (gcloud, the
/// component, Java).
pub fn emulator_installed() -> bool {
    on_path("java") && on_path("gcloud") && emulator_component()
}

fn emulator_component() -> bool {
    let mut gcloud = Command::new("gcloud");
    gcloud.env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1");
    gcloud
        .args(["beta", "emulators", "pubsub", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    gcloud.status().is_ok_and(|status| status.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Found = Found { python: true, python_venv: true, java: true, gcloud: true, emulator: true, flock: true };

    #[test]
    fn nothing_missing_is_no_message() {
        assert_eq!(missing(&ALL, false), None);
        assert_eq!(missing(&Found { python_venv: false, ..ALL }, true), None, "a made virtualenv needs no venv module");
    }

    #[test]
    fn one_message_names_everything_missing_and_how_to_install_it() {
        let message = missing(&Found { java: false, emulator: false, python_venv: false, ..ALL }, false).unwrap();
        for expected in [
            "Python 3 with its venv module",
            "a Java runtime",
            "pubsub-emulator components",
            "Debian or Ubuntu: apt-get install python3 python3-venv; apt-get install default-jre-headless; \
             apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator",
            "macOS: brew install python; brew install openjdk; the Google Cloud CLI",
        ] {
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
        assert!(!message.contains("flock"), "{message}");
    }
}
