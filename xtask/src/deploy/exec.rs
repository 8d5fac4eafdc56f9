//! The commands of `cargo xtask build` and `deploy`, run through the
//! [`Runner`]'s shell (so its working directory and environment, including a
//! `PATH` that tests point at stand-in executables) or, with `--dry-run`,
//! printed in order with none run. Every command is also kept in a
//! transcript, which is what the tests read back.

use std::fmt;
use std::path::PathBuf;

use crate::runner::Runner;

/// A program and its arguments.
#[derive(Clone, Debug)]
pub struct Command {
    pub program: &'static str,
    pub args: Vec<String>,
}

pub fn command<I, S>(program: &'static str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Command { program, args: args.into_iter().map(Into::into).collect() }
}

impl fmt::Display for Command {
    /// As a shell would need it typed: arguments quoted where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for arg in &self.args {
            let plain = !arg.is_empty()
                && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,<>".contains(c))
                && !arg.starts_with(['<', '>']);
            if plain {
                write!(f, " {arg}")?;
            } else {
                write!(f, " '{}'", arg.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

pub struct Exec<'a> {
    runner: &'a Runner,
    /// Every command (and `# note`) in order: printed ones in a dry run,
    /// started ones otherwise.
    pub transcript: Vec<String>,
}

impl<'a> Exec<'a> {
    pub fn new(runner: &'a Runner) -> Self {
        Self { runner, transcript: Vec::new() }
    }

    pub fn dry_run(&self) -> bool {
        self.runner.dry_run
    }

    pub fn root(&self) -> PathBuf {
        self.runner.root.clone()
    }

    /// The `PATH` commands are looked up in (the shell's, which tests override).
    pub fn search_path(&self) -> String {
        self.runner.sh.var("PATH").unwrap_or_default()
    }

    /// A line that is not a command: what happens next, or what cannot be
    /// shown as a command (an HTTP check, a decision).
    pub fn note(&mut self, text: &str) {
        let line = format!("# {text}");
        if self.dry_run() {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
        self.transcript.push(line);
    }

    fn announce(&mut self, command: &Command) {
        let line = command.to_string();
        if self.dry_run() {
            println!("{line}");
        } else {
            eprintln!("$ {line}");
        }
        self.transcript.push(line);
    }

    fn shell_command(&self, command: &Command) -> xshell::Cmd<'_> {
        self.runner.sh.cmd(command.program).args(&command.args).quiet()
    }

    /// Runs a command with its output shown; fails on a non-zero exit.
    pub fn run(&mut self, command: &Command) -> anyhow::Result<()> {
        self.announce(command);
        if !self.dry_run() {
            self.shell_command(command).run()?;
        }
        Ok(())
    }

    /// Runs a command and returns its standard output, trimmed (never
    /// echoed: it may be a token). In a dry run: `placeholder`.
    pub fn read(&mut self, command: &Command, placeholder: &str) -> anyhow::Result<String> {
        self.announce(command);
        if self.dry_run() {
            return Ok(placeholder.to_owned());
        }
        Ok(self.shell_command(command).read()?)
    }

    /// Like [`Exec::read`], but a non-zero exit (or a program that cannot
    /// start) is `None` rather than an error: for questions such as "does this
    /// image exist?". Standard error is kept quiet.
    pub fn try_read(&mut self, command: &Command, placeholder: Option<&str>) -> Option<String> {
        self.announce(command);
        if self.dry_run() {
            return placeholder.map(str::to_owned);
        }
        let output = self.shell_command(command).ignore_status().ignore_stderr().output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}
