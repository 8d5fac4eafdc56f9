//! Runs (or, with `--dry-run`, prints) the commands of an xtask.

use std::path::PathBuf;

use xshell::{Cmd, Shell};

pub struct Runner {
    pub sh: Shell,
    pub root: PathBuf,
    pub dry_run: bool,
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
