//! `cargo xtask build`: the release binaries of both services; with
//! `--images`, also both container images with the local Docker (tagged
//! `agent-registry/{api,webhook-worker}:<git sha>`); with `--cloud-build`,
//! the images are built and pushed by Cloud Build instead
//! (`deploy/cloudbuild.yaml` with `_DEPLOY=false`: no migration, no rollout)
//! and nothing is compiled here.

use crate::deploy::{DOCKERFILE, Environment, Exec, IMAGES, Target, command};
use crate::runner::Runner;

const USAGE: &str = "usage: cargo xtask build [--images | --cloud-build [--env staging|production]
                          [--project P] [--region R]] [--dry-run]";

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub images: bool,
    pub cloud_build: bool,
    pub environment: Option<Environment>,
    pub project: Option<String>,
    pub region: Option<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().cloned().ok_or_else(|| anyhow::anyhow!("{name} needs a value\n{USAGE}"));
            match arg.as_str() {
                "--images" => options.images = true,
                "--cloud-build" => options.cloud_build = true,
                "--env" => options.environment = Some(Environment::parse(&value("--env")?)?),
                "--project" => options.project = Some(value("--project")?),
                "--region" => options.region = Some(value("--region")?),
                other => anyhow::bail!("unexpected argument {other:?}\n{USAGE}"),
            }
        }
        if options.images && options.cloud_build {
            anyhow::bail!("--images builds locally, --cloud-build remotely: pick one\n{USAGE}");
        }
        if !options.cloud_build && (options.environment.is_some() || options.project.is_some()) {
            anyhow::bail!("--env and --project only go with --cloud-build\n{USAGE}");
        }
        Ok(options)
    }
}

pub fn run(runner: &Runner, args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    build(&mut Exec::new(runner), &options)
}

pub fn build(exec: &mut Exec<'_>, options: &Options) -> anyhow::Result<()> {
    if options.cloud_build {
        return cloud_build(exec, options);
    }
    exec.run(&command("cargo", ["build", "--release", "--locked", "-p", "api", "-p", "webhook-worker"]))?;
    exec.note("binaries: target/release/api, target/release/webhook-worker");
    if options.images {
        let sha = exec.read(&command("git", ["rev-parse", "HEAD"]), "<sha>")?;
        for name in IMAGES {
            let tag = format!("agent-registry/{name}:{sha}");
            exec.run(&command("docker", ["build", "-f", DOCKERFILE, "--target", name, "-t", &tag, "."]))?;
        }
    }
    Ok(())
}

fn cloud_build(exec: &mut Exec<'_>, options: &Options) -> anyhow::Result<()> {
    let environment = options.environment.unwrap_or(Environment::Staging);
    let target = Target::resolve(&exec.root(), environment, options.project.as_deref(), options.region.as_deref())?;
    let sha = exec.read(&command("git", ["rev-parse", "HEAD"]), "<sha>")?;
    // The upload is the working tree but the tag is the commit: they must agree.
    if !exec.read(&command("git", ["status", "--porcelain"]), "")?.is_empty() {
        anyhow::bail!("the working tree has uncommitted changes; the images are tagged with the commit: commit first");
    }
    exec.run(&command(
        "gcloud",
        [
            "builds",
            "submit",
            "--project",
            &target.project,
            "--region",
            &target.region,
            "--config",
            "deploy/cloudbuild.yaml",
            &format!(
                "--substitutions=COMMIT_SHA={sha},_ENV={},_REGION={},_DEPLOY=false",
                environment.name(),
                target.region
            ),
            ".",
        ],
    ))?;
    for name in IMAGES {
        exec.note(&format!("pushed {}:{sha}", target.image(name)));
    }
    Ok(())
}
