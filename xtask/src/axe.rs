//! axe-core for the console's browser tests: the version pinned by
//! `tests/browser/package-lock.json`, installed with `npm ci` into
//! `~/.cache/agent-registry-npm-<hash of the lock>` (once per pin, outside
//! the clone, never at run time of the services), and named to the tests in
//! the env var `AXE_CORE_JS`. Chromium and chromedriver are system packages:
//! `.ci/run` installs them on CI; the tests say what to install elsewhere.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use xshell::cmd;

use crate::runner::Runner;

/// Where the pins are: `package.json` and its `package-lock.json`.
const MANIFEST_DIR: &str = "tests/browser";

/// The env var the tests read (`tests::browser::AXE_CORE_JS`).
const ENV: &str = "AXE_CORE_JS";

const NO_NPM: &str = "npm is not installed: the console's accessibility tests take axe-core from the npm \
    registry (Debian/Ubuntu: apt-get install npm; .ci/run does this on CI)";

/// Installs the pinned axe-core when its cache directory lacks it, and
/// sets `AXE_CORE_JS` for the commands `runner` runs next.
pub fn provision(runner: &Runner) -> anyhow::Result<()> {
    let manifest = runner.path(MANIFEST_DIR);
    let lock = std::fs::read(manifest.join("package-lock.json"))?;
    let prefix = cache_dir(&home()?, &lock);
    let script = axe_script(&prefix);
    if !script.is_file() {
        // Only the browser tests need it: without npm they fail saying so
        // (naming AXE_CORE_JS), and every other test still runs.
        if !runner.dry_run
            && runner.sh.cmd("npm").arg("--version").quiet().ignore_stdout().ignore_stderr().run().is_err()
        {
            eprintln!("warning: {NO_NPM}");
            return Ok(());
        }
        install(runner, &manifest, &prefix)?;
    }
    runner.sh.set_var(ENV, &script);
    Ok(())
}

/// `npm ci` into a scratch directory beside `prefix`, then renamed into
/// place, so an interrupted install or a concurrent one never leaves a
/// half-filled cache that looks complete.
fn install(runner: &Runner, manifest: &Path, prefix: &Path) -> anyhow::Result<()> {
    let scratch = prefix.with_extension(format!("tmp-{}", std::process::id()));
    runner.step(&format!("copy {MANIFEST_DIR}/package*.json to {}", scratch.display()), || {
        std::fs::create_dir_all(&scratch)?;
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(manifest.join(file), scratch.join(file))?;
        }
        Ok(())
    })?;
    let sh = &runner.sh;
    runner.run(cmd!(sh, "npm ci --prefix {scratch} --ignore-scripts --no-audit --no-fund"))?;
    runner.step(&format!("move it to {}", prefix.display()), || {
        // Another run may have finished first: then its copy stays.
        if std::fs::rename(&scratch, prefix).is_err() {
            std::fs::remove_dir_all(&scratch)?;
        }
        anyhow::ensure!(axe_script(prefix).is_file(), "npm ci left no {}", axe_script(prefix).display());
        Ok(())
    })
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| anyhow::anyhow!("HOME is not set"))
}

/// The install directory of the pins in `lock`: a new one for new pins.
fn cache_dir(home: &Path, lock: &[u8]) -> PathBuf {
    let hash: String = Sha256::digest(lock).iter().take(8).map(|byte| format!("{byte:02x}")).collect();
    home.join(".cache").join(format!("agent-registry-npm-{hash}"))
}

fn axe_script(prefix: &Path) -> PathBuf {
    prefix.join("node_modules/axe-core/axe.min.js")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn read_json(file: &str) -> Value {
        let path = crate::project_root().join(MANIFEST_DIR).join(file);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// An exact pin, and the lock says the same one: `npm ci` installs
    /// exactly that, and the cache key changes with it.
    #[test]
    fn axe_core_is_pinned_exactly_and_locked() {
        let pin = read_json("package.json")["dependencies"]["axe-core"].as_str().unwrap().to_owned();
        assert!(pin.chars().all(|c| c.is_ascii_digit() || c == '.'), "an exact version, not a range: {pin}");
        let lock = read_json("package-lock.json");
        assert_eq!(lock["packages"]["node_modules/axe-core"]["version"], pin.as_str());
        assert!(lock["packages"]["node_modules/axe-core"]["integrity"].as_str().unwrap().starts_with("sha512-"));
    }

    #[test]
    fn each_lock_has_its_own_cache_directory() {
        let home = Path::new("/home/dev");
        let first = cache_dir(home, b"lock one");
        assert_eq!(first, cache_dir(home, b"lock one"));
        assert_ne!(first, cache_dir(home, b"lock two"));
        assert!(first.to_string_lossy().starts_with("/home/dev/.cache/agent-registry-npm-"));
        assert_eq!(first.file_name().unwrap().len(), "agent-registry-npm-".len() + 16);
    }
}
