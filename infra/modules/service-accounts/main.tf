# One identity per workload, least privilege:
#   api            Cloud SQL client, logs, traces; enqueues Cloud Tasks
#                  (queue-level grant in the tasks module), publishes to the
#                  topics (topic-level grants in the pubsub module), and may
#                  act as tasks-invoker only (to put OIDC tokens on tasks).
#   worker         Cloud SQL client, logs, traces (it records dead
#                  deliveries in Postgres; the API publishes them).
#   tasks-invoker  no project roles; the identity Cloud Tasks presents to the
#                  worker, holding roles/run.invoker on the worker alone
#                  (cloud-run module).
#   deployer       Cloud Build / deploy: creates revisions and runs the
#                  migrate job (roles/run.developer), pushes images
#                  (repository-level grant in the artifact-registry module),
#                  writes build logs, and may act as api and worker only.
# Secret access is granted per secret in the secrets module. Cloud Run's own
# request/CPU metrics need no role; add roles/monitoring.metricWriter only if
# the services (or an OpenTelemetry collector sidecar) start exporting metrics.

locals {
  accounts = {
    api = {
      suffix       = "api"
      display_name = "agent-registry API (Cloud Run)"
    }
    worker = {
      suffix       = "worker"
      display_name = "agent-registry webhook worker (Cloud Run)"
    }
    tasks_invoker = {
      suffix       = "tasks-invoker"
      display_name = "Cloud Tasks OIDC identity that invokes the webhook worker"
    }
    deployer = {
      suffix       = "deployer"
      display_name = "Cloud Build / deploy pipeline"
    }
  }

  runtime_roles = [
    "roles/cloudsql.client",
    "roles/logging.logWriter",
    var.trace_writer_role,
  ]

  project_roles = merge(
    { for role in local.runtime_roles : "api/${role}" => { account = "api", role = role } },
    { for role in local.runtime_roles : "worker/${role}" => { account = "worker", role = role } },
    {
      "deployer/roles/run.developer"     = { account = "deployer", role = "roles/run.developer" }
      "deployer/roles/logging.logWriter" = { account = "deployer", role = "roles/logging.logWriter" }
    },
  )

  # who may act as whom: key => { target account, acting account }
  act_as = {
    "api-as-tasks-invoker" = { target = "tasks_invoker", actor = "api" }
    # The worker creates each retry's task, with the invoker's OIDC token.
    "worker-as-tasks-invoker" = { target = "tasks_invoker", actor = "worker" }
    "deployer-as-api"         = { target = "api", actor = "deployer" }
    "deployer-as-worker"      = { target = "worker", actor = "deployer" }
  }
}

resource "google_service_account" "this" {
  for_each = local.accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.value.suffix}"
  display_name = each.value.display_name
}

resource "google_project_iam_member" "this" {
  for_each = local.project_roles

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.this[each.value.account].member
}

resource "google_service_account_iam_member" "act_as" {
  for_each = local.act_as

  service_account_id = google_service_account.this[each.value.target].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.this[each.value.actor].member
}
