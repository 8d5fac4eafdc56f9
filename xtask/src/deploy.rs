//! `cargo xtask deploy <staging|production>`: build and push both images,
//! migrate, roll out both services with Terraform, smoke-test, and roll back
//! if anything fails after the images were pushed.
//!
//! Order, and why:
//!
//! 1. **Preflight** (nothing changes): `gcloud`, `docker`, `terraform`, `git`
//!    on `PATH`; gcloud logged in (user and application-default credentials,
//!    which Terraform uses); the Docker daemon answers; the project exists;
//!    the tree is clean (the images are tagged with the commit); production
//!    is confirmed (`--yes`, or y at a terminal prompt).
//! 2. **Images**: `terraform init`; on a first deploy, a targeted apply that
//!    creates the APIs, service accounts and Artifact Registry repository the
//!    push needs; then per image: reuse it if this tag was already pushed
//!    (tags are immutable), else `docker build` + `docker push`; resolve its
//!    digest. Everything after deploys digests, never tags.
//! 3. **Remember** the revision each service serves now (for rollback).
//! 4. **Migrate before any new code serves**: a Terraform apply targeted at
//!    the migrate job only (`-target=module.platform.module.migrate`) points
//!    it at the new API image, without touching the services; then the job
//!    runs to completion (`gcloud run jobs execute --wait`). The old
//!    revisions serve meanwhile, so migrations must be backward compatible
//!    (expand, then contract in a later release). Doing the full apply first
//!    would let new code serve against the old schema; running the job
//!    before any apply would run the old image's migrations.
//! 5. **Full apply**: new revisions of both services (and any other
//!    infrastructure change). Cloud Run routes traffic to a revision only
//!    after its startup probe (`/readyz`) passes.
//! 6. **Wait** until each service's latest revision is its latest ready one.
//! 7. **Smoke test** the public URL (`terraform output -raw api_url`):
//!    `/readyz` 200, a discovery read 200, and a signed request (a throwaway
//!    client registered with a fresh Ed25519 key by `shared::signing`) 201.
//!
//! Any failure from step 4 on sends each service's traffic back to the
//! revision recorded in step 3 (`gcloud run services update-traffic
//! --to-revisions=REV=100`) and fails naming the step. Migrations are not
//! undone (they are backward compatible by rule). Terraform's state still
//! names the new images; the next deploy applies its own.

mod exec;
mod smoke;
#[cfg(test)]
pub mod stand_ins;
#[cfg(test)]
mod tests;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

pub use exec::{Command, Exec, command};

use crate::runner::Runner;

/// Names fixed by `infra/modules/platform` (a test checks they agree).
pub const REPOSITORY: &str = "agent-registry";
pub const API_SERVICE: &str = "agent-registry-api";
pub const WORKER_SERVICE: &str = "agent-registry-worker";
pub const MIGRATE_JOB: &str = "migrate";
pub const DOCKERFILE: &str = "deploy/Dockerfile";

/// The two images: Dockerfile target = image name in the repository.
pub const IMAGES: [&str; 2] = ["api", "webhook-worker"];

const USAGE: &str = "usage: cargo xtask deploy <staging|production> [--dry-run] [--yes] [--allow-dirty]
                           [--project P] [--region R] [--state-bucket B]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Staging,
    Production,
}

impl Environment {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "staging" => Ok(Self::Staging),
            "production" => Ok(Self::Production),
            other => anyhow::bail!("unknown environment {other:?}: staging or production"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// The Terraform root of this environment, relative to the workspace.
    pub fn terraform_dir(self) -> String {
        format!("infra/environments/{}", self.name())
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub environment: Environment,
    pub yes: bool,
    pub allow_dirty: bool,
    pub project: Option<String>,
    pub region: Option<String>,
    pub state_bucket: Option<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let (mut environment, mut yes, mut allow_dirty) = (None, false, false);
        let (mut project, mut region, mut state_bucket) = (None, None, None);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().cloned().ok_or_else(|| anyhow::anyhow!("{name} needs a value\n{USAGE}"));
            match arg.as_str() {
                "--yes" | "-y" => yes = true,
                "--allow-dirty" => allow_dirty = true,
                "--project" => project = Some(value("--project")?),
                "--region" => region = Some(value("--region")?),
                "--state-bucket" => state_bucket = Some(value("--state-bucket")?),
                option if option.starts_with('-') => anyhow::bail!("unknown option {option}\n{USAGE}"),
                name if environment.is_none() => environment = Some(Environment::parse(name)?),
                other => anyhow::bail!("unexpected argument {other:?}\n{USAGE}"),
            }
        }
        let environment = environment.ok_or_else(|| anyhow::anyhow!("which environment?\n{USAGE}"))?;
        Ok(Self { environment, yes, allow_dirty, project, region, state_bucket })
    }
}

/// Where an environment lives: `--project`/`--region`, else its
/// `terraform.tfvars`.
#[derive(Clone, Debug)]
pub struct Target {
    pub environment: Environment,
    pub project: String,
    pub region: String,
}

impl Target {
    pub fn resolve(
        root: &Path,
        environment: Environment,
        project: Option<&str>,
        region: Option<&str>,
    ) -> anyhow::Result<Self> {
        let tfvars_path = root.join(environment.terraform_dir()).join("terraform.tfvars");
        let tfvars = std::fs::read_to_string(&tfvars_path).unwrap_or_default();
        let project = project.map(str::to_owned).or_else(|| tfvars_string(&tfvars, "project_id")).ok_or_else(|| {
            anyhow::anyhow!("no GCP project: pass --project or set project_id in {}", tfvars_path.display())
        })?;
        let region = region
            .map(str::to_owned)
            .or_else(|| tfvars_string(&tfvars, "region"))
            .ok_or_else(|| anyhow::anyhow!("no region: pass --region or set region in {}", tfvars_path.display()))?;
        Ok(Self { environment, project, region })
    }

    pub fn registry_host(&self) -> String {
        format!("{}-docker.pkg.dev", self.region)
    }

    /// `REGION-docker.pkg.dev/PROJECT/agent-registry/NAME` (no tag).
    pub fn image(&self, name: &str) -> String {
        format!("{}/{}/{REPOSITORY}/{name}", self.registry_host(), self.project)
    }
}

/// `key = "value"` at the top level of a tfvars file.
fn tfvars_string(tfvars: &str, key: &str) -> Option<String> {
    tfvars.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.trim().trim_matches('"').to_owned()).filter(|value| !value.is_empty())
    })
}

/// How long to wait for revisions and `/readyz`.
#[derive(Clone, Copy, Debug)]
pub struct Polling {
    pub attempts: u32,
    pub interval: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self { attempts: 60, interval: Duration::from_secs(5) }
    }
}

/// `cargo xtask deploy`.
pub fn run(runner: &Runner, args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    Deploy::new(runner, options, std::io::stdin().is_terminal(), Polling::default())?.run()
}

pub struct Deploy<'a> {
    exec: Exec<'a>,
    options: Options,
    target: Target,
    /// Whether production may be confirmed at a prompt.
    terminal: bool,
    polling: Polling,
}

/// An image pushed (or found) under its tag, deployed by digest.
struct Image {
    name: &'static str,
    by_digest: String,
}

impl<'a> Deploy<'a> {
    pub fn new(runner: &'a Runner, options: Options, terminal: bool, polling: Polling) -> anyhow::Result<Self> {
        let target =
            Target::resolve(&runner.root, options.environment, options.project.as_deref(), options.region.as_deref())?;
        Ok(Self { exec: Exec::new(runner), options, target, terminal, polling })
    }

    /// What was printed (dry run) or started, in order.
    #[cfg(test)]
    pub fn transcript(&self) -> &[String] {
        &self.exec.transcript
    }

    pub fn run(&mut self) -> anyhow::Result<()> {
        let target = self.target.clone();
        self.exec.note(&format!(
            "deploy to {} (project {}, region {})",
            target.environment.name(),
            target.project,
            target.region
        ));
        self.check_tools()?;
        let tag = self.commit_tag()?;
        self.confirm(&tag)?;
        let images = self.push_images(&tag)?;

        // From here on the environment changes: remember what serves now.
        let previous = self.current_revisions();
        if self.exec.dry_run() {
            self.exec.note("if any step below fails, roll back (the same commands as on a real failure):");
            self.roll_back(&previous);
            self.exec.note("end of rollback; the deploy continues:");
        }
        match self.roll_out(&images) {
            Ok(url) => {
                self.exec.note(&format!("deployed {tag} to {}: {url}", target.environment.name()));
                Ok(())
            }
            Err(failure) => {
                let rolled_back = self.roll_back(&previous);
                Err(failure.context(format!("deploy of {tag} to {} failed; {rolled_back}", target.environment.name())))
            }
        }
    }

    // -- 1. preflight -------------------------------------------------------

    fn check_tools(&mut self) -> anyhow::Result<()> {
        const TOOLS: [(&str, &str); 4] = [
            ("gcloud", "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"),
            ("docker", "install Docker: https://docs.docker.com/get-docker/"),
            ("terraform", "install Terraform >= 1.5: https://developer.hashicorp.com/terraform/install"),
            ("git", "install git: https://git-scm.com/downloads"),
        ];
        self.exec.note("check that gcloud, docker, terraform and git are installed");
        if !self.exec.dry_run() {
            let path = self.exec.search_path();
            for (tool, install) in TOOLS {
                if !on_path(&path, tool) {
                    anyhow::bail!("`{tool}` is not installed (not found on PATH): {install}");
                }
            }
        }
        // The token is read and dropped, never printed.
        self.exec
            .read(&command("gcloud", ["auth", "print-access-token", "--quiet"]), "<token>")
            .map_err(|_| anyhow::anyhow!("gcloud is not authenticated: run `gcloud auth login`"))?;
        self.exec
            .read(&command("gcloud", ["auth", "application-default", "print-access-token", "--quiet"]), "<token>")
            .map_err(|_| {
                anyhow::anyhow!("Terraform has no Google credentials: run `gcloud auth application-default login`")
            })?;
        self.exec
            .read(&command("docker", ["info", "--format", "{{.ServerVersion}}"]), "<version>")
            .map_err(|_| anyhow::anyhow!("docker is installed but its daemon does not answer: start Docker"))?;
        let project = self.target.project.clone();
        self.exec
            .read(&command("gcloud", ["projects", "describe", &project, "--format=value(projectId)"]), &project)
            .map_err(|_| {
            anyhow::anyhow!(
                "project {project} does not exist or this account cannot see it: pass --project, \
                     or set project_id in {}/terraform.tfvars",
                self.target.environment.terraform_dir()
            )
        })?;
        Ok(())
    }

    /// The tag of both images: the commit SHA (refusing uncommitted changes
    /// unless `--allow-dirty`, which tags `SHA-dirty-<unix time>`).
    fn commit_tag(&mut self) -> anyhow::Result<String> {
        let sha = self.exec.read(&command("git", ["rev-parse", "HEAD"]), "<sha>")?;
        let changes = self.exec.read(&command("git", ["status", "--porcelain"]), "")?;
        if changes.is_empty() {
            return Ok(sha);
        }
        if !self.options.allow_dirty {
            anyhow::bail!(
                "the working tree has uncommitted changes; the images are tagged with the commit, \
                 so commit them first (or pass --allow-dirty):\n{changes}"
            );
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        Ok(format!("{sha}-dirty-{now}"))
    }

    fn confirm(&mut self, tag: &str) -> anyhow::Result<()> {
        if self.target.environment != Environment::Production || self.options.yes {
            return Ok(());
        }
        if self.exec.dry_run() {
            self.exec.note("production: asks for confirmation here (or pass --yes)");
            return Ok(());
        }
        if !self.terminal {
            anyhow::bail!(
                "refusing to deploy to production without confirmation: pass --yes \
                 (stdin is not a terminal, so there is no one to ask)"
            );
        }
        eprint!("Deploy {tag} to PRODUCTION (project {}, {})? [y/N] ", self.target.project, self.target.region);
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anyhow::bail!("production deploy cancelled");
        }
        Ok(())
    }

    // -- 2. images ----------------------------------------------------------

    fn terraform(&self, args: &[&str]) -> Command {
        command("terraform", [format!("-chdir={}", self.target.environment.terraform_dir())])
            .args_from(args.iter().copied())
    }

    /// `-var` for everything the deploy decides; the rest is terraform.tfvars.
    fn terraform_vars(&self, api_image: &str, worker_image: &str) -> Vec<String> {
        [
            format!("project_id={}", self.target.project),
            format!("region={}", self.target.region),
            format!("api_image={api_image}"),
            format!("worker_image={worker_image}"),
        ]
        .into_iter()
        .flat_map(|var| ["-var".to_owned(), var])
        .collect()
    }

    fn push_images(&mut self, tag: &str) -> anyhow::Result<Vec<Image>> {
        let bucket = self.options.state_bucket.clone().unwrap_or_else(|| format!("{}-tfstate", self.target.project));
        let init = self.terraform(&["init", "-input=false", &format!("-backend-config=bucket={bucket}")]);
        step("terraform init", self.exec.run(&init))?;

        // First deploy: the push needs the repository (and the APIs and the
        // deployer account) before the services can exist.
        let repository = command(
            "gcloud",
            [
                "artifacts",
                "repositories",
                "describe",
                REPOSITORY,
                "--location",
                &self.target.region,
                "--project",
                &self.target.project,
                "--format=value(name)",
            ],
        );
        let exists = self.exec.try_read(&repository, Some(REPOSITORY)).is_some();
        if self.exec.dry_run() {
            self.exec.note("only on a first deploy (no repository yet), create what the push needs:");
        } else if !exists {
            self.exec.note("no Artifact Registry repository yet (first deploy): create what the push needs");
        }
        if !exists || self.exec.dry_run() {
            let tagged: Vec<String> = IMAGES.iter().map(|name| format!("{}:{tag}", self.target.image(name))).collect();
            let mut bootstrap = self.terraform(&[
                "apply",
                "-input=false",
                "-auto-approve",
                "-target=module.platform.google_project_service.this",
                "-target=module.platform.module.service_accounts",
                "-target=module.platform.module.artifact_registry",
            ]);
            bootstrap.args.extend(self.terraform_vars(&tagged[0], &tagged[1]));
            step("create the Artifact Registry repository (terraform apply -target)", self.exec.run(&bootstrap))?;
        }

        let configure = command("gcloud", ["auth", "configure-docker", &self.target.registry_host(), "--quiet"]);
        step("gcloud auth configure-docker", self.exec.run(&configure))?;

        let mut images = Vec::new();
        for name in IMAGES {
            let tagged = format!("{}:{tag}", self.target.image(name));
            let describe = command(
                "gcloud",
                ["artifacts", "docker", "images", "describe", &tagged, "--format=value(image_summary.digest)"],
            );
            // Tags are immutable in the repository: a re-deploy of the same
            // commit reuses the image pushed before.
            let digest = match self.exec.try_read(&describe, None).filter(|digest| !digest.is_empty()) {
                Some(digest) => {
                    self.exec.note(&format!("{tagged} is already pushed: reusing it"));
                    digest
                }
                None => {
                    if self.exec.dry_run() {
                        self.exec.note(&format!("unless {tagged} is already pushed (then it is reused):"));
                    }
                    let build = command(
                        "docker",
                        ["build", "-f", DOCKERFILE, "--target", name, "--platform", "linux/amd64", "-t", &tagged, "."],
                    );
                    step(&format!("docker build {name}"), self.exec.run(&build))?;
                    step(&format!("docker push {name}"), self.exec.run(&command("docker", ["push", &tagged])))?;
                    step(
                        &format!("resolve the digest of {name}"),
                        self.exec.read(&describe, &format!("<{name}-digest>")),
                    )?
                }
            };
            if !self.exec.dry_run() && !is_sha256_digest(&digest) {
                anyhow::bail!("the digest of {tagged} is {digest:?}, not sha256:<64 hex digits>");
            }
            images.push(Image { name, by_digest: format!("{}@{digest}", self.target.image(name)) });
        }
        Ok(images)
    }

    // -- 3. previous revisions -------------------------------------------------

    fn describe_service(&self, service: &str, format: &str) -> Command {
        command(
            "gcloud",
            [
                "run",
                "services",
                "describe",
                service,
                "--region",
                &self.target.region,
                "--project",
                &self.target.project,
                &format!("--format=value({format})"),
            ],
        )
    }

    fn current_revisions(&mut self) -> Vec<(&'static str, Option<String>)> {
        [API_SERVICE, WORKER_SERVICE]
            .into_iter()
            .map(|service| {
                let describe = self.describe_service(service, "status.latestReadyRevisionName");
                let placeholder = format!("<previous-{service}-revision>");
                let revision = self.exec.try_read(&describe, Some(&placeholder)).filter(|name| !name.is_empty());
                if revision.is_none() {
                    self.exec
                        .note(&format!("{service} has no ready revision yet (first deploy): nothing to roll back to"));
                }
                (service, revision)
            })
            .collect()
    }

    // -- 4-7. migrate, apply, wait, smoke test ----------------------------------

    /// Returns the API's URL.
    fn roll_out(&mut self, images: &[Image]) -> anyhow::Result<String> {
        let image = |name: &str| images.iter().find(|image| image.name == name).map(|image| image.by_digest.clone());
        let (api_image, worker_image) = (image("api").unwrap_or_default(), image("webhook-worker").unwrap_or_default());
        let vars = self.terraform_vars(&api_image, &worker_image);

        let mut migrate_job =
            self.terraform(&["apply", "-input=false", "-auto-approve", "-target=module.platform.module.migrate"]);
        migrate_job.args.extend(vars.clone());
        step("point the migrate job at the new image (terraform apply -target)", self.exec.run(&migrate_job))?;

        let execute = command(
            "gcloud",
            [
                "run",
                "jobs",
                "execute",
                MIGRATE_JOB,
                "--region",
                &self.target.region,
                "--project",
                &self.target.project,
                "--wait",
            ],
        );
        step("run the migrations (gcloud run jobs execute migrate)", self.exec.run(&execute))?;

        let mut apply = self.terraform(&["apply", "-input=false", "-auto-approve"]);
        apply.args.extend(vars);
        step("deploy both services (terraform apply)", self.exec.run(&apply))?;

        for service in [WORKER_SERVICE, API_SERVICE] {
            step(&format!("wait for {service} to be ready"), self.wait_until_ready(service))?;
        }

        let url = step(
            "read the API URL (terraform output)",
            self.exec.read(&self.terraform(&["output", "-raw", "api_url"]), "<api-url>"),
        )?;
        step("smoke test", smoke::run(&mut self.exec, &url, self.polling))?;
        Ok(url)
    }

    fn wait_until_ready(&mut self, service: &str) -> anyhow::Result<()> {
        let describe =
            self.describe_service(service, "status.latestCreatedRevisionName,status.latestReadyRevisionName");
        if self.exec.dry_run() {
            self.exec.read(&describe, "")?;
            self.exec.note(&format!("repeat until {service}'s latest revision is its latest ready revision"));
            return Ok(());
        }
        let mut last = String::new();
        for attempt in 0..self.polling.attempts {
            if attempt > 0 {
                std::thread::sleep(self.polling.interval);
            }
            last = self.exec.read(&describe, "")?;
            let mut names = last.split_whitespace();
            if let (Some(created), Some(ready)) = (names.next(), names.next())
                && created == ready
            {
                self.exec.note(&format!("{service}: revision {ready} is ready"));
                return Ok(());
            }
        }
        anyhow::bail!("{service} is not ready (latest created, latest ready: {last:?})")
    }

    // -- rollback ------------------------------------------------------------

    /// Sends each service's traffic back to its recorded revision; says what it did.
    fn roll_back(&mut self, previous: &[(&'static str, Option<String>)]) -> String {
        self.exec.note("rolling back both services to the revisions recorded before the deploy");
        let mut outcomes = Vec::new();
        for (service, revision) in previous {
            let Some(revision) = revision else {
                outcomes.push(format!("{service} had no previous revision (not rolled back)"));
                continue;
            };
            let update = command(
                "gcloud",
                [
                    "run",
                    "services",
                    "update-traffic",
                    service,
                    &format!("--to-revisions={revision}=100"),
                    "--region",
                    &self.target.region,
                    "--project",
                    &self.target.project,
                ],
            );
            match self.exec.run(&update) {
                Ok(()) => outcomes.push(format!("rolled {service} back to {revision}")),
                Err(error) => outcomes.push(format!(
                    "ROLLBACK OF {service} TO {revision} FAILED ({})",
                    shared::error_chain::Causes(&*error)
                )),
            }
        }
        outcomes.join(", ")
    }
}

impl Command {
    fn args_from<'s>(mut self, args: impl IntoIterator<Item = &'s str>) -> Self {
        self.args.extend(args.into_iter().map(str::to_owned));
        self
    }
}

/// Names the failed step in the error.
fn step<T>(name: &str, result: anyhow::Result<T>) -> anyhow::Result<T> {
    result.map_err(|error| error.context(format!("step failed: {name}")))
}

fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `tool` is an executable file in one of `path`'s directories.
pub fn on_path(path: &str, tool: &str) -> bool {
    std::env::split_paths(path).any(|dir| std::fs::metadata(dir.join(tool)).is_ok_and(|meta| is_executable(&meta)))
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file()
}
