//! Python virtualenvs outside the clone, one per set of pins: made on first
//! use under `$XDG_CACHE_HOME` (else `~/.cache`), named by the SHA-256 of
//! their requirements file, so every clone and worktree shares one and a
//! change of pins makes a new one. Two exist: the test tools'
//! ([`TEST_TOOLS`], first on the tests' `PATH`) and the FastAPI original's
//! ([`FASTAPI_ORIGINAL`], for the side-by-side bench and its smoke test).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use sha2::{Digest, Sha256};
use xshell::cmd;

use crate::runner::Runner;

/// A virtualenv of the requirements at `requirements` (relative to the
/// workspace root), named `<name>-<first 16 hex digits of their SHA-256>`.
pub struct Virtualenv {
    pub requirements: &'static str,
    name: &'static str,
    /// What it is for, as the steps name it.
    what: &'static str,
}

pub const TEST_TOOLS: Virtualenv = Virtualenv {
    requirements: "tests/scripts/requirements.txt",
    name: "agent-registry-venv",
    what: "the test virtualenv",
};

pub const FASTAPI_ORIGINAL: Virtualenv = Virtualenv {
    requirements: "xtask/bench/fastapi_original/requirements.txt",
    name: "agent-registry-fastapi-original-venv",
    what: "the FastAPI original's virtualenv",
};

/// Written once pip installed every requirement.
const COMPLETE: &str = "agent-registry-complete";

impl Virtualenv {
    /// Where it is (or will be) for the requirements as they are now.
    pub fn dir(&self, runner: &Runner) -> anyhow::Result<PathBuf> {
        self.dir_in(&runner.path(self.requirements), &cache_dir()?)
    }

    fn dir_in(&self, requirements: &Path, cache: &Path) -> anyhow::Result<PathBuf> {
        let text = std::fs::read(requirements).with_context(|| format!("cannot read {}", requirements.display()))?;
        let hash: String = Sha256::digest(&text)[..8].iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(cache.join(format!("{}-{hash}", self.name)))
    }

    /// Whether pip installed every requirement there.
    pub fn is_complete(&self, runner: &Runner) -> anyhow::Result<bool> {
        Ok(self.dir(runner)?.join(COMPLETE).is_file())
    }

    /// Its directory, made first if missing (or completed, when pip did not
    /// finish: interrupted, or made before the marker existed).
    pub fn provide(&self, runner: &Runner) -> anyhow::Result<PathBuf> {
        let venv = self.dir(runner)?;
        if venv.join(COMPLETE).is_file() {
            return Ok(venv);
        }
        let python = venv.join("bin/python3");
        let requirements = self.requirements;
        let making =
            format!("make {} {} (first use, or new pins in {requirements}; about a minute)", self.what, venv.display());
        runner.step(&making, || {
            if python.is_file() || python_with_venv() {
                Ok(())
            } else {
                anyhow::bail!(
                    "{} needs Python 3 with its venv module: apt-get install python3 python3-venv (Debian or Ubuntu), brew install python (macOS)",
                    self.what
                )
            }
        })?;
        let sh = &runner.sh;
        if !python.is_file() {
            runner.run(cmd!(sh, "python3 -m venv {venv}"))?;
        }
        runner.run(cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check -r {requirements}"))?;
        runner.step(&format!("mark {} complete", venv.display()), || {
            std::fs::write(venv.join(COMPLETE), "").with_context(|| format!("cannot write in {}", venv.display()))
        })?;
        Ok(venv)
    }
}

/// `python3 -m venv` works here (Debian splits it into `python3-venv`).
pub fn python_with_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `$XDG_CACHE_HOME`, else `~/.cache`: outside the clone.
fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home =
        std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set: no place for the virtualenvs")?;
    Ok(PathBuf::from(home).join(".cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtualenv_is_keyed_by_its_requirements_hash() {
        let dir = std::env::temp_dir().join(format!("xtask-venv-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let requirements = dir.join("requirements.txt");
        std::fs::write(&requirements, "schemathesis==4.32.5\n").unwrap();
        let first = TEST_TOOLS.dir_in(&requirements, Path::new("/cache")).unwrap();
        // sha256("schemathesis==4.32.5\n"), as `sha256sum | cut -c1-16` (what .ci/run used) names it.
        let expected = Sha256::digest(b"schemathesis==4.32.5\n");
        assert_eq!(first, Path::new("/cache").join(format!("agent-registry-venv-{}", &hex(&expected)[..16])));
        let original = FASTAPI_ORIGINAL.dir_in(&requirements, Path::new("/cache")).unwrap();
        assert_ne!(original, first, "the same pins for another purpose are another virtualenv");
        std::fs::write(&requirements, "schemathesis==4.33.0\n").unwrap();
        assert_ne!(TEST_TOOLS.dir_in(&requirements, Path::new("/cache")).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
