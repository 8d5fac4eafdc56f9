//! Runs (or, with `--dry-run`, prints) the commands of an xtask.

use std::path::PathBuf;

use xshell::{Cmd, Shell};

pub struct Runner {
    pub sh: Shell,
    pub root: PathBuf,
    pub dry_run: bool,
}

/// Removes what `cargo xtask` (a `cargo run`) set in this process's
/// environment for the xtask package itself. Build scripts that read them
/// (ring's names `CARGO_MANIFEST_DIR` and `CARGO_PKG_*` with
/// `rerun-if-env-changed`) found them changed against a build run from a
/// plain shell, so every `cargo build` run from here rebuilt them and all
/// above them: 9 minutes of a release build for `cargo xtask bench` after a
/// `cargo build --release`. Call it first, before any thread starts.
pub fn forget_cargo_run_variables() {
    for name in cargo_run_variables() {
        // SAFETY: called at the top of `main`, while no other thread runs
        // to read the environment.
        unsafe { std::env::remove_var(name) };
    }
}

fn cargo_run_variables() -> Vec<std::ffi::OsString> {
    const SET_FOR_THE_PACKAGE: [&str; 6] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
    ];
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            name.to_str().is_some_and(|name| name.starts_with("CARGO_PKG_") || SET_FOR_THE_PACKAGE.contains(&name))
        })
        .collect()
}

impl Runner {
    pub fn new(root: PathBuf, dry_run: bool) -> anyhow::Result<Self> {
        let sh = Shell::new()?;
        sh.change_dir(&root);
        Ok(Self { sh, root, dry_run })
    }

    pub fn run(&self, cmd: Cmd<'_>) -> anyhow::Result<()> {
        if self.dry_run {
            println!("{cmd}");
            return Ok(());
        }
        cmd.run()?; // xshell echoes it first
        Ok(())
    }

    /// A step that is not a command (a check, a migration): described in dry
    /// runs, done otherwise.
    pub fn step(&self, description: &str, action: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
        if self.dry_run {
            println!("# {description}");
            return Ok(());
        }
        eprintln!("# {description}");
        action()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub fn has_cargo_subcommand(&self, subcommand: &str) -> bool {
        self.sh.cmd("cargo").args([subcommand, "--version"]).quiet().ignore_stdout().ignore_stderr().run().is_ok()
    }
}
