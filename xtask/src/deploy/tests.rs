//! `cargo xtask deploy` against the stand-ins of [`super::stand_ins`].

use std::path::Path;
use std::time::Duration;

use super::stand_ins::{API_DIGEST, SHA, StandIns, WORKER_DIGEST, serve_api};
use super::*;

fn options(environment: Environment) -> Options {
    Options { environment, yes: false, allow_dirty: false, project: None, region: None, state_bucket: None }
}

const FAST: Polling = Polling { attempts: 2, interval: Duration::from_millis(10) };

fn deploy(stand_ins: &StandIns, options: Options, dry_run: bool) -> (anyhow::Result<()>, Vec<String>) {
    let runner = stand_ins.runner(dry_run);
    let mut deploy = Deploy::new(&runner, options, false, FAST).unwrap();
    let result = deploy.run();
    (result, deploy.transcript().to_vec())
}

fn image(name: &str) -> String {
    format!("us-west1-docker.pkg.dev/agent-registry-staging/agent-registry/{name}")
}

fn position(log: &[String], prefix: &str) -> usize {
    log.iter().position(|line| line.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {log:#?}"))
}

#[test]
fn staging_deploy_runs_every_step_in_order() {
    let stand_ins = StandIns::new();
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);
    result.unwrap();

    let tf = "terraform -chdir=infra/environments/staging";
    let vars = format!(
        "-var project_id=agent-registry-staging -var region=us-west1 -var api_image={}@{API_DIGEST} -var worker_image={}@{WORKER_DIGEST}",
        image("api"),
        image("webhook-worker")
    );
    let describe = "gcloud run services describe";
    let at = "--region us-west1 --project agent-registry-staging";
    let expected = [
        "gcloud auth print-access-token --quiet".to_owned(),
        "gcloud auth application-default print-access-token --quiet".to_owned(),
        "docker info --format {{.ServerVersion}}".to_owned(),
        "gcloud projects describe agent-registry-staging --format=value(projectId)".to_owned(),
        "git rev-parse HEAD".to_owned(),
        "git status --porcelain".to_owned(),
        format!("{tf} init -input=false -backend-config=bucket=agent-registry-staging-tfstate"),
        "gcloud artifacts repositories describe agent-registry --location us-west1 --project agent-registry-staging --format=value(name)".to_owned(),
        "gcloud auth configure-docker us-west1-docker.pkg.dev --quiet".to_owned(),
        format!("gcloud artifacts docker images describe {}:{SHA} --format=value(image_summary.digest)", image("api")),
        format!("docker build -f deploy/Dockerfile --target api --platform linux/amd64 -t {}:{SHA} .", image("api")),
        format!("docker push {}:{SHA}", image("api")),
        format!("gcloud artifacts docker images describe {}:{SHA} --format=value(image_summary.digest)", image("api")),
        format!("gcloud artifacts docker images describe {}:{SHA} --format=value(image_summary.digest)", image("webhook-worker")),
        format!(
            "docker build -f deploy/Dockerfile --target webhook-worker --platform linux/amd64 -t {}:{SHA} .",
            image("webhook-worker")
        ),
        format!("docker push {}:{SHA}", image("webhook-worker")),
        format!("gcloud artifacts docker images describe {}:{SHA} --format=value(image_summary.digest)", image("webhook-worker")),
        format!("{describe} agent-registry-api {at} --format=value(status.latestReadyRevisionName)"),
        format!("{describe} agent-registry-worker {at} --format=value(status.latestReadyRevisionName)"),
        format!("{tf} apply -input=false -auto-approve -target=module.platform.module.migrate {vars}"),
        format!("gcloud run jobs execute migrate {at} --wait"),
        format!("{tf} apply -input=false -auto-approve {vars}"),
        format!("{describe} agent-registry-worker {at} --format=value(status.latestCreatedRevisionName,status.latestReadyRevisionName)"),
        format!("{describe} agent-registry-api {at} --format=value(status.latestCreatedRevisionName,status.latestReadyRevisionName)"),
        format!("{tf} output -raw api_url"),
    ];
    assert_eq!(stand_ins.log(), expected);
    assert_eq!(
        *stand_ins.api.requests.lock().unwrap(),
        ["GET /readyz", "GET /v1/agents?limit=1", "POST /v1/clients (signed)"]
    );
}

#[test]
fn a_failing_apply_stops_the_deploy_and_rolls_both_services_back() {
    let stand_ins = StandIns::new();
    stand_ins.fail("terraform *apply*-target=module.platform.module.migrate*");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("step failed: point the migrate job at the new image"), "{error}");
    assert!(error.contains("rolled agent-registry-api back to agent-registry-api-00001-old"), "{error}");
    assert!(error.contains("rolled agent-registry-worker back to agent-registry-worker-00001-old"), "{error}");
    let log = stand_ins.log();
    assert!(!log.iter().any(|line| line.starts_with("gcloud run jobs execute")), "{log:#?}");
    let at = "--region us-west1 --project agent-registry-staging";
    assert_eq!(
        log[log.len() - 2..],
        [
            format!(
                "gcloud run services update-traffic agent-registry-api --to-revisions=agent-registry-api-00001-old=100 {at}"
            ),
            format!(
                "gcloud run services update-traffic agent-registry-worker --to-revisions=agent-registry-worker-00001-old=100 {at}"
            ),
        ]
    );
    assert!(stand_ins.api.requests.lock().unwrap().is_empty());
}

#[test]
fn failed_migrations_roll_back_without_deploying_the_services() {
    let stand_ins = StandIns::new();
    stand_ins.fail("gcloud run jobs execute*");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("step failed: run the migrations"), "{error}");
    let log = stand_ins.log();
    let full_applies = log.iter().filter(|line| line.contains(" apply ") && !line.contains("-target=")).count();
    assert_eq!(full_applies, 0, "{log:#?}");
    assert!(
        position(&log, "gcloud run services update-traffic agent-registry-api") > position(&log, "gcloud run jobs")
    );
    assert!(log.last().unwrap().starts_with("gcloud run services update-traffic agent-registry-worker"));
}

#[test]
fn a_failing_smoke_test_rolls_back() {
    let stand_ins = StandIns::with_api(serve_api(503));
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("step failed: smoke test") && error.contains("/readyz did not answer 200"), "{error}");
    let log = stand_ins.log();
    assert!(
        position(&log, "gcloud run services update-traffic")
            > position(&log, "terraform -chdir=infra/environments/staging output")
    );
    assert_eq!(*stand_ins.api.requests.lock().unwrap(), ["GET /readyz", "GET /readyz"]);
}

#[test]
fn a_failing_build_stops_before_anything_changes_and_needs_no_rollback() {
    let stand_ins = StandIns::new();
    stand_ins.fail("docker build*");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("step failed: docker build api"), "{error}");
    let log = stand_ins.log();
    assert!(log.last().unwrap().starts_with("docker build"), "{log:#?}");
    assert!(!log.iter().any(|line| line.contains(" apply ") || line.contains("update-traffic")), "{log:#?}");
}

#[test]
fn images_already_pushed_for_this_commit_are_reused() {
    let stand_ins = StandIns::new();
    stand_ins.write("pushed", &format!("{}:{SHA}\n{}:{SHA}\n", image("api"), image("webhook-worker")));
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);
    result.unwrap();

    let log = stand_ins.log();
    assert!(!log.iter().any(|line| line.starts_with("docker build") || line.starts_with("docker push")), "{log:#?}");
    let apply = &log[position(&log, "terraform -chdir=infra/environments/staging apply")];
    assert!(apply.contains(&format!("api_image={}@{API_DIGEST}", image("api"))), "{apply}");
}

#[test]
fn a_first_deploy_creates_the_repository_before_pushing() {
    let stand_ins = StandIns::new();
    stand_ins.fail("gcloud artifacts repositories describe*");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);
    result.unwrap();

    let log = stand_ins.log();
    let bootstrap = position(
        &log,
        "terraform -chdir=infra/environments/staging apply -input=false -auto-approve -target=module.platform.google_project_service.this",
    );
    assert!(log[bootstrap].contains("-target=module.platform.module.artifact_registry"));
    assert!(log[bootstrap].contains(&format!("-var api_image={}:{SHA}", image("api"))), "{}", log[bootstrap]);
    assert!(bootstrap < position(&log, "docker push"));
}

#[test]
fn production_without_yes_is_refused_when_no_one_can_be_asked() {
    let stand_ins = StandIns::new();
    let (result, _) = deploy(&stand_ins, options(Environment::Production), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("refusing to deploy to production") && error.contains("--yes"), "{error}");
    let log = stand_ins.log();
    assert!(!log.iter().any(|line| line.starts_with("docker build") || line.starts_with("terraform")), "{log:#?}");
}

#[test]
fn production_with_yes_deploys_to_the_production_root() {
    let stand_ins = StandIns::new();
    let (result, _) = deploy(&stand_ins, Options { yes: true, ..options(Environment::Production) }, false);
    result.unwrap();

    let log = stand_ins.log();
    let apply =
        &log[position(&log, "terraform -chdir=infra/environments/production apply -input=false -auto-approve -var")];
    assert!(apply.contains("-var project_id=agent-registry-production"), "{apply}");
    assert!(
        apply.contains(&format!("us-west1-docker.pkg.dev/agent-registry-production/agent-registry/api@{API_DIGEST}"))
    );
}

#[test]
fn project_and_region_options_reach_every_command() {
    let stand_ins = StandIns::new();
    let options = Options {
        project: Some("my-project-123".into()),
        region: Some("europe-west1".into()),
        state_bucket: Some("my-state".into()),
        ..options(Environment::Staging)
    };
    let (result, _) = deploy(&stand_ins, options, false);
    result.unwrap();

    let log = stand_ins.log();
    assert!(log.iter().any(|line| line.ends_with("-backend-config=bucket=my-state")));
    assert!(log.contains(&format!("docker push europe-west1-docker.pkg.dev/my-project-123/agent-registry/api:{SHA}")));
    for line in log.iter().filter(|line| line.starts_with("gcloud run")) {
        assert!(line.contains("--region europe-west1 --project my-project-123"), "{line}");
    }
    for line in log.iter().filter(|line| line.contains(" apply ")) {
        assert!(line.contains("-var project_id=my-project-123 -var region=europe-west1"), "{line}");
    }
}

#[test]
fn dry_run_prints_every_step_in_order_and_runs_nothing() {
    let stand_ins = StandIns::new();
    let (result, transcript) = deploy(&stand_ins, options(Environment::Production), true);
    result.unwrap();

    assert!(stand_ins.log().is_empty(), "a dry run ran {:#?}", stand_ins.log());
    assert!(stand_ins.api.requests.lock().unwrap().is_empty());
    let steps = [
        "gcloud auth print-access-token",
        "docker info",
        "git rev-parse HEAD",
        "# production: asks for confirmation",
        "terraform -chdir=infra/environments/production init",
        "# only on a first deploy (no repository yet)",
        "terraform -chdir=infra/environments/production apply -input=false -auto-approve -target=module.platform.google_project_service.this",
        "gcloud auth configure-docker us-west1-docker.pkg.dev",
        "docker build -f deploy/Dockerfile --target api",
        "docker push us-west1-docker.pkg.dev/agent-registry-production/agent-registry/api:<sha>",
        "docker build -f deploy/Dockerfile --target webhook-worker",
        "docker push us-west1-docker.pkg.dev/agent-registry-production/agent-registry/webhook-worker:<sha>",
        "gcloud run services describe agent-registry-api",
        "# if any step below fails, roll back",
        "gcloud run services update-traffic agent-registry-api --to-revisions=<previous-agent-registry-api-revision>=100",
        "gcloud run services update-traffic agent-registry-worker --to-revisions=<previous-agent-registry-worker-revision>=100",
        "terraform -chdir=infra/environments/production apply -input=false -auto-approve -target=module.platform.module.migrate",
        "gcloud run jobs execute migrate",
        "terraform -chdir=infra/environments/production apply -input=false -auto-approve -var",
        "terraform -chdir=infra/environments/production output -raw api_url",
        "# GET <api-url>/readyz",
        "# POST <api-url>/v1/clients signed",
    ];
    let positions: Vec<usize> = steps.iter().map(|step| position(&transcript, step)).collect();
    assert!(positions.is_sorted(), "out of order: {transcript:#?}");
    let apply = &transcript[positions[18]];
    assert!(
        apply.contains("api_image=us-west1-docker.pkg.dev/agent-registry-production/agent-registry/api@<api-digest>")
    );
}

#[test]
fn a_missing_tool_is_named_with_how_to_install_it() {
    let stand_ins = StandIns::new();
    stand_ins.remove_tool("terraform");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("`terraform` is not installed") && error.contains("developer.hashicorp.com"), "{error}");
    assert!(stand_ins.log().is_empty());
}

#[test]
fn gcloud_without_login_says_to_log_in() {
    let stand_ins = StandIns::new();
    stand_ins.fail("gcloud auth print-access-token*");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);

    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("run `gcloud auth login`"), "{error}");
    assert!(!error.contains("ya29"), "a token leaked into {error}");
}

#[test]
fn a_dirty_tree_is_refused_unless_allowed() {
    let stand_ins = StandIns::new();
    stand_ins.write("git-status", " M api/src/main.rs\n");
    let (result, _) = deploy(&stand_ins, options(Environment::Staging), false);
    let error = shared::error_chain::render(&*result.unwrap_err());
    assert!(error.contains("uncommitted changes") && error.contains("--allow-dirty"), "{error}");
    assert!(!stand_ins.log().iter().any(|line| line.starts_with("terraform")));

    let stand_ins = StandIns::new();
    stand_ins.write("git-status", " M api/src/main.rs\n");
    let (result, _) = deploy(&stand_ins, Options { allow_dirty: true, ..options(Environment::Staging) }, false);
    result.unwrap();
    let log = stand_ins.log();
    assert!(log.iter().any(|line| line.starts_with(&format!("docker push {}:{SHA}-dirty-", image("api")))), "{log:#?}");
}

#[test]
fn options_parse() {
    let args = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let options = Options::parse(&args("production --yes --project p-123456 --region europe-west1")).unwrap();
    assert_eq!(options.environment, Environment::Production);
    assert!(options.yes && !options.allow_dirty);
    assert_eq!((options.project.as_deref(), options.region.as_deref()), (Some("p-123456"), Some("europe-west1")));
    assert!(Options::parse(&args("")).unwrap_err().to_string().contains("which environment"));
    assert!(Options::parse(&args("prod")).unwrap_err().to_string().contains("staging or production"));
    assert!(Options::parse(&args("staging --force")).unwrap_err().to_string().contains("unknown option --force"));
    assert!(Options::parse(&args("staging --project")).unwrap_err().to_string().contains("needs a value"));
}

/// A file of the repository with its whitespace runs made single spaces,
/// so checks of its text do not depend on alignment or line breaks.
fn read(path: &str) -> String {
    let text = std::fs::read_to_string(crate::project_root().join(path)).unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The names the deploy uses are the ones Terraform, Cloud Build and the
/// Dockerfile define.
#[test]
fn names_agree_with_terraform_cloud_build_and_the_dockerfile() {
    let platform = read("infra/modules/platform/main.tf");
    for fragment in [
        r#"name = "agent-registry""#,
        r#"api_service_name = "${local.name}-api""#,
        r#"worker_service_name = "${local.name}-worker""#,
        r#"name = "migrate""#,
        "repository_id = local.name",
        "module \"migrate\" {",
        "worker_push_url = \"https://${local.worker_service_name}-${data.google_project.this.number}.${var.region}.run.app/tasks/deliver\"",
        "WEBHOOK_WORKER_URL = local.worker_push_url",
        "CLOUD_TASKS_QUEUE = module.tasks.id",
        "CLOUD_TASKS_QUEUE_COUNT = tostring(module.tasks.queue_count)",
    ] {
        assert!(platform.contains(fragment), "infra/modules/platform/main.tf lacks {fragment}");
    }
    assert!(!platform.contains("WORKER_SHARED_SECRET ="), "the cloud must not set WORKER_SHARED_SECRET");
    assert_eq!(
        (API_SERVICE, WORKER_SERVICE, MIGRATE_JOB, REPOSITORY),
        ("agent-registry-api", "agent-registry-worker", "migrate", "agent-registry")
    );

    let cloudbuild = read("deploy/cloudbuild.yaml");
    for fragment in [
        "gcloud run services update agent-registry-api",
        "gcloud run services update agent-registry-worker",
        "gcloud run jobs execute migrate",
        "--target, api,",
        "--target, webhook-worker,",
        "_REPOSITORY: agent-registry",
        "/readyz",
    ] {
        assert!(cloudbuild.contains(fragment), "deploy/cloudbuild.yaml lacks {fragment}");
    }

    let dockerfile = read(DOCKERFILE);
    for fragment in [
        "AS api",
        "AS webhook-worker",
        "USER nonroot",
        "EXPOSE 8080",
        "ENV SQLX_OFFLINE=true",
        "ENTRYPOINT [\"/usr/local/bin/api\"]",
        "ENTRYPOINT [\"/usr/local/bin/webhook-worker\"]",
        "cargo build --release --locked -p api -p webhook-worker",
    ] {
        assert!(dockerfile.contains(fragment), "deploy/Dockerfile lacks {fragment}");
    }
    let dockerignore = read(".dockerignore");
    for ignored in ["target/", ".git/", ".env", "*.pem"] {
        assert!(dockerignore.contains(ignored), ".dockerignore lets {ignored} into the build context");
    }
}

/// Terraform names the delivery queues as the services pick them
/// (`CloudTasksSettings::queues`) and bounds their number as
/// `CLOUD_TASKS_QUEUE_COUNT` does.
#[test]
fn delivery_queues_agree_with_the_services() {
    let tasks = read("infra/modules/tasks/main.tf");
    let naming = r#"[for index in range(var.queue_count) : index == 0 ? var.name : "${var.name}-${index}"]"#;
    assert!(tasks.contains(naming), "infra/modules/tasks/main.tf lacks {naming}");
    let max = shared::settings::MAX_DELIVERY_QUEUES;
    let bound = format!("var.queue_count <= {max}");
    assert!(read("infra/modules/tasks/variables.tf").contains(&bound), "infra/modules/tasks lacks {bound}");
    let bound = format!("var.delivery_queues.count <= {max}");
    for path in ["infra/modules/platform/variables.tf", "infra/environments/common/variables.tf"] {
        assert!(read(path).contains(&bound), "{path} lacks {bound}");
    }
}

/// An evicted nonce would let its request be replayed: Memorystore must
/// refuse writes when full (the API then fails closed) rather than evict.
#[test]
fn redis_never_evicts_nonces() {
    let redis = read("infra/modules/redis/main.tf");
    assert!(
        redis.contains(r#"redis_configs = { "maxmemory-policy" = "noeviction" }"#),
        "infra/modules/redis/main.tf must set maxmemory-policy noeviction"
    );
}

#[test]
fn terraform_is_formatted() {
    let path = std::env::var("PATH").unwrap_or_default();
    if !on_path(&path, "terraform") {
        println!("terraform is not installed: skipping `terraform fmt -check -recursive infra`");
        return;
    }
    let root: &Path = &crate::project_root();
    let output = std::process::Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "infra"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "terraform fmt -check -recursive infra: these files need `terraform fmt`:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
