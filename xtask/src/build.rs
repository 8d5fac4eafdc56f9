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

/// Against the stand-in tools of `cargo xtask deploy`'s tests.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::stand_ins::{SHA, StandIns};

    #[test]
    fn build_dry_run_prints_binaries_then_images() {
        let stand_ins = StandIns::new();
        let runner = stand_ins.runner(true);
        let mut exec = Exec::new(&runner);
        build(&mut exec, &Options { images: true, ..Default::default() }).unwrap();
        assert_eq!(
            exec.transcript,
            [
                "cargo build --release --locked -p api -p webhook-worker",
                "# binaries: target/release/api, target/release/webhook-worker",
                "git rev-parse HEAD",
                "docker build -f deploy/Dockerfile --target api -t agent-registry/api:<sha> .",
                "docker build -f deploy/Dockerfile --target webhook-worker -t agent-registry/webhook-worker:<sha> .",
            ]
        );
        assert!(stand_ins.log().is_empty());
    }

    #[test]
    fn build_images_tags_with_the_commit() {
        let stand_ins = StandIns::new();
        // `cargo` is a stand-in too: this checks the sequence, not the compiler.
        stand_ins.write_tool("cargo", "");
        let runner = stand_ins.runner(false);
        build(&mut Exec::new(&runner), &Options { images: true, ..Default::default() }).unwrap();
        assert_eq!(
            stand_ins.log(),
            [
                "cargo build --release --locked -p api -p webhook-worker".to_owned(),
                "git rev-parse HEAD".to_owned(),
                format!("docker build -f deploy/Dockerfile --target api -t agent-registry/api:{SHA} ."),
                format!(
                    "docker build -f deploy/Dockerfile --target webhook-worker -t agent-registry/webhook-worker:{SHA} ."
                ),
            ]
        );
    }

    #[test]
    fn build_with_cloud_build_submits_without_deploying() {
        let stand_ins = StandIns::new();
        let runner = stand_ins.runner(false);
        let options = Options::parse(&["--cloud-build".to_owned(), "--env".to_owned(), "production".to_owned()]);
        build(&mut Exec::new(&runner), &options.unwrap()).unwrap();
        assert_eq!(
            stand_ins.log(),
            [
                "git rev-parse HEAD".to_owned(),
                "git status --porcelain".to_owned(),
                format!(
                    "gcloud builds submit --project agent-registry-production --region us-west1 --config deploy/cloudbuild.yaml \
                     --substitutions=COMMIT_SHA={SHA},_ENV=production,_REGION=us-west1,_DEPLOY=false ."
                ),
            ]
        );
    }
}
