//! What the tests need besides cargo, for `cargo xtask test` and `cargo
//! xtask ci`: the Python test tools (`tests/scripts/requirements.txt`) in a
//! virtualenv of their own, made on first use and put first on `PATH`; and
//! Google's Pub/Sub emulator with Java, which the end-to-end tests publish
//! to; and the browser tests' axe-core from npm (`axe.rs`). What cannot be
//! made in user space (Python itself, the emulator, Java)
//! is checked up front and named in one message, with how to install it per
//! system, instead of failing tests one by one. (`.ci/run` installs those
//! system packages on CI; a developer's machine is left to its owner.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use sha2::{Digest, Sha256};
use xshell::cmd;

use crate::runner::Runner;

pub const REQUIREMENTS: &str = "tests/scripts/requirements.txt";

/// Checks the system's tools, then makes (if missing) the virtualenv and
/// puts its `bin/` first on the `PATH` of every command the runner runs;
/// then axe-core.
pub fn provide(runner: &Runner) -> anyhow::Result<()> {
    let venv = venv_dir(&runner.path(REQUIREMENTS), &cache_dir()?)?;
    let made = venv_complete(&venv);
    runner.step("check that Python 3 (and, to make the test virtualenv, its venv module), Java and Google's Pub/Sub emulator are installed", || {
        match missing(&Found::here(), made) {
            None => Ok(()),
            Some(message) => anyhow::bail!(message),
        }
    })?;
    if !made {
        make_venv(runner, &venv)?;
    }
    let bin = venv.join("bin");
    runner.step(&format!("put {} first on PATH (the tests' python3, schemathesis)", bin.display()), || Ok(()))?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))?;
    runner.sh.set_var("PATH", path);
    crate::axe::provision(runner)
}

/// `$XDG_CACHE_HOME`, else `~/.cache`: outside the clone, so every clone
/// and worktree shares one virtualenv per set of pins.
fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home =
        std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set: no place for the test virtualenv")?;
    Ok(PathBuf::from(home).join(".cache"))
}

/// `agent-registry-venv-<first 16 hex digits of the requirements' SHA-256>`
/// in `cache`: a change of pins makes a new one.
fn venv_dir(requirements: &Path, cache: &Path) -> anyhow::Result<PathBuf> {
    let text = std::fs::read(requirements).with_context(|| format!("cannot read {}", requirements.display()))?;
    let hash: String = Sha256::digest(&text)[..8].iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(cache.join(format!("agent-registry-venv-{hash}")))
}

/// Written once pip installed every requirement.
const COMPLETE: &str = "agent-registry-complete";

fn venv_complete(venv: &Path) -> bool {
    venv.join(COMPLETE).is_file()
}

/// Makes the virtualenv, or completes one pip did not finish (interrupted,
/// or made before this marker existed): pip installs what is missing.
fn make_venv(runner: &Runner, venv: &Path) -> anyhow::Result<()> {
    let sh = &runner.sh;
    let python = venv.join("bin/python3");
    let making = format!(
        "make the test virtualenv {} (first use, or new pins in {REQUIREMENTS}; about a minute)",
        venv.display()
    );
    runner.step(&making, || Ok(()))?;
    if !python.is_file() {
        runner.run(cmd!(sh, "python3 -m venv {venv}"))?;
    }
    runner.run(cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check -r {REQUIREMENTS}"))?;
    runner.step(&format!("mark {} complete", venv.display()), || {
        std::fs::write(venv.join(COMPLETE), "").with_context(|| format!("cannot write in {}", venv.display()))
    })
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
            python_venv: python && succeeds("python3", &["-c", "import venv, ensurepip"]),
            java,
            gcloud,
            emulator: gcloud && emulator_component(),
            flock: on_path("flock"),
        }
    }
}

/// One message naming each missing tool and how to install it, or `None`.
/// `venv_made`: the test virtualenv exists, so Python's venv module is not needed.
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

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Found = Found { python: true, python_venv: true, java: true, gcloud: true, emulator: true, flock: true };

    #[test]
    fn the_virtualenv_is_keyed_by_the_requirements_hash() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let requirements = dir.join("requirements.txt");
        std::fs::write(&requirements, "schemathesis==4.32.5\n").unwrap();
        let first = venv_dir(&requirements, Path::new("/cache")).unwrap();
        // sha256("schemathesis==4.32.5\n"), as `sha256sum | cut -c1-16` (what .ci/run used) names it.
        let expected = Sha256::digest(b"schemathesis==4.32.5\n");
        assert_eq!(first, Path::new("/cache").join(format!("agent-registry-venv-{}", &hex(&expected)[..16])));
        std::fs::write(&requirements, "schemathesis==4.33.0\n").unwrap();
        assert_ne!(venv_dir(&requirements, Path::new("/cache")).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

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
