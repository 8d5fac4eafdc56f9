//! `cargo xtask dev`'s one build: every binary the local stack runs, in one
//! `cargo build`, so with one feature set (a `cargo run` per package resolves
//! features per package and rebuilt the shared crates for each), then the
//! paths cargo reports for them. Cargo shows its own progress on stderr.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::runner::Runner;

/// Where each binary was built.
pub struct Binaries(HashMap<String, PathBuf>);

impl Binaries {
    /// The path of `bin` (one of those built).
    pub fn path(&self, bin: &str) -> anyhow::Result<String> {
        let path = self.0.get(bin).with_context(|| format!("cargo built no binary {bin}"))?;
        Ok(path.display().to_string())
    }
}

/// `cargo build` of the packages' binaries named `bins`.
fn arguments(packages: &[&str], bins: &[&str]) -> Vec<String> {
    let mut args = vec!["build".to_owned()];
    for package in packages {
        args.extend(["--package".to_owned(), (*package).to_owned()]);
    }
    for bin in bins {
        args.extend(["--bin".to_owned(), (*bin).to_owned()]);
    }
    // Artifacts as JSON on stdout (their paths), diagnostics as usual on stderr.
    args.push("--message-format=json-render-diagnostics".to_owned());
    args
}

/// Builds `bins` of `packages`; in a dry run prints the command and answers
/// `<target>/debug/<bin>`. Stops cargo when `stop` turns true (a SIGTERM
/// for `dev` does not reach cargo; Ctrl-C in a terminal does).
pub fn build(runner: &Runner, packages: &[&str], bins: &[&str], stop: &AtomicBool) -> anyhow::Result<Binaries> {
    let args = arguments(packages, bins);
    if runner.dry_run {
        println!("cargo {}", args.join(" "));
        let placeholders = bins.iter().map(|bin| ((*bin).to_owned(), PathBuf::from(format!("<target>/debug/{bin}"))));
        return Ok(Binaries(placeholders.collect()));
    }
    eprintln!("$ cargo {}", args.join(" "));
    eprintln!(
        "building {} in one cargo build (a fresh target dir takes minutes; cargo shows its progress)",
        bins.join(", ")
    );
    let started = Instant::now();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(&args)
        .current_dir(&runner.root)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let stdout = cargo.stdout.take().context("cargo's stdout")?;
    let (mut built, mut compiled) = (HashMap::new(), 0);
    let (cargo_id, read) = (cargo.id(), AtomicBool::new(false));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !read.load(Ordering::SeqCst) {
                if stop.load(Ordering::SeqCst) {
                    let _ = Command::new("kill").args(["-TERM", &cargo_id.to_string()]).status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let reading = (|| {
            for line in BufReader::new(stdout).lines() {
                let Ok(message) = serde_json::from_str::<serde_json::Value>(&line?) else { continue };
                if message["reason"] != "compiler-artifact" {
                    continue;
                }
                compiled += usize::from(message["fresh"] == false);
                let (name, executable) = (message["target"]["name"].as_str(), message["executable"].as_str());
                if let (Some(name), Some(executable)) = (name, executable) {
                    built.insert(name.to_owned(), PathBuf::from(executable));
                }
            }
            Ok::<_, std::io::Error>(())
        })();
        read.store(true, Ordering::SeqCst);
        reading
    })?;
    let status = cargo.wait()?;
    if !status.success() {
        anyhow::bail!("cargo build failed ({status})");
    }
    eprintln!("built in {:.1} s ({compiled} crates compiled, the rest up to date)", started.elapsed().as_secs_f64());
    Ok(Binaries(built))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_build_names_every_package_and_binary() {
        let args = arguments(&["api", "tests"], &["api", "webhook_receiver"]);
        assert_eq!(
            args.join(" "),
            "build --package api --package tests --bin api --bin webhook_receiver --message-format=json-render-diagnostics"
        );
    }
}
