# agent-registry: everything one environment runs, in its own GCP project.
# environments/staging and environments/production each call this module
# once; their differences are the sizes in terraform.tfvars and the state
# prefix. Provider configuration (project, region, default labels) stays in
# the environment roots.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  name = "agent-registry"

  apis = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudtasks.googleapis.com",
    "cloudtrace.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "telemetry.googleapis.com",
  ])

  api_service_name    = "${local.name}-api"
  worker_service_name = "${local.name}-worker"
  # Cloud Run's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app):
  # known before the service exists, so the worker can be told its own URL
  # without a dependency cycle. Cloud Run accepts it as an OIDC audience.
  worker_push_url = "https://${local.worker_service_name}-${data.google_project.this.number}.${var.region}.run.app/tasks/deliver"
}

resource "google_project_service" "this" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------
# Identities, network, secrets

module "service_accounts" {
  source = "../service-accounts"

  project_id  = var.project_id
  name_prefix = local.name
  # The collector sidecars export OTLP to telemetry.googleapis.com.
  trace_writer_role = "roles/telemetry.tracesWriter"

  depends_on = [google_project_service.this]
}

module "networking" {
  source = "../networking"

  project_id  = var.project_id
  region      = var.region
  name        = local.name
  subnet_cidr = var.subnet_cidr

  depends_on = [google_project_service.this]
}

module "secrets" {
  source = "../secrets"

  project_id        = var.project_id
  replica_locations = [var.region]

  secrets = {
    "database-read-url" = {
      description = "postgres:// URL of agent_registry as api_user over the read replica's private IP with TLS (written by the database module; no version without database.read_replica)."
      accessors = {
        api = module.service_accounts.api_email
      }
    }
    "database-url" = {
      description = "postgres:// URL of agent_registry as api_user over the private IP with TLS (written by the database module)."
      accessors = {
        api    = module.service_accounts.api_email
        worker = module.service_accounts.worker_email
      }
    }
    "db-password" = {
      description = "Password of the Cloud SQL user api_user (written by the database module). Read by operators only."
      accessors   = {}
    }
    "redis-url" = {
      description = "rediss://:AUTH@host:port/0 of Memorystore (written by the redis module)."
      accessors = {
        api    = module.service_accounts.api_email
        worker = module.service_accounts.worker_email
      }
    }
    "redis-ca-cert" = {
      description = "PEM server CA certificates of Memorystore, needed to verify its TLS (written by the redis module)."
      accessors = {
        api    = module.service_accounts.api_email
        worker = module.service_accounts.worker_email
      }
    }
    "platform-signing-key" = {
      description = "The platform's Ed25519 signing key, base64 of a 32-byte seed: signs Agent Cards and job receipts (PLATFORM_SIGNING_KEY; an older version is PLATFORM_SIGNING_KEY_PREVIOUS during a rotation)."
      accessors = {
        api = module.service_accounts.api_email
      }
      generated        = true
      generated_as     = "base64_bytes"
      generated_length = 32
    }
  }

  depends_on = [google_project_service.this]
}

# Webhook secrets are sealed at rest under this key: the API encrypts, the
# worker decrypts, nobody else does either.
module "kms" {
  source = "../kms"

  project_id = var.project_id
  region     = var.region

  encrypters = {
    api = module.service_accounts.api_email
  }
  decrypters = {
    worker = module.service_accounts.worker_email
  }

  depends_on = [google_project_service.this]
}

# ---------------------------------------------------------------------------
# Data stores

module "database" {
  source = "../database"

  project_id          = var.project_id
  region              = var.region
  instance_name       = "${local.name}-${var.environment}"
  tier                = var.database.tier
  disk_size_gb        = var.database.disk_size_gb
  high_availability   = var.database.high_availability
  deletion_protection = var.database.deletion_protection
  retained_backups    = var.database.retained_backups
  max_connections     = var.database.max_connections

  private_network    = module.networking.private_services_network
  allocated_ip_range = module.networking.private_services_range_name

  password_secret     = module.secrets.secret_names["db-password"]
  database_url_secret = module.secrets.secret_names["database-url"]

  read_replica             = var.database.read_replica
  database_read_url_secret = module.secrets.secret_names["database-read-url"]

  depends_on = [google_project_service.this]
}

module "redis" {
  source = "../redis"

  project_id     = var.project_id
  region         = var.region
  name           = "${local.name}-${var.environment}"
  tier           = var.redis.tier
  memory_size_gb = var.redis.memory_size_gb
  replica_count  = var.redis.replica_count

  authorized_network = module.networking.private_services_network
  reserved_ip_range  = module.networking.private_services_range_name

  redis_url_secret = module.secrets.secret_names["redis-url"]
  ca_cert_secret   = module.secrets.secret_names["redis-ca-cert"]

  depends_on = [google_project_service.this]
}

# ---------------------------------------------------------------------------
# Messaging and images

module "tasks" {
  source = "../tasks"

  project_id             = var.project_id
  region                 = var.region
  name                   = "webhook-delivery"
  logging_sampling_ratio = var.tasks_logging_sampling_ratio

  queue_count               = var.delivery_queues.count
  max_dispatches_per_second = var.delivery_queues.max_dispatches_per_second
  max_concurrent_dispatches = var.delivery_queues.max_concurrent_dispatches

  # The relay creates first attempts; the worker every retry (and deferral).
  enqueuers = {
    api    = module.service_accounts.api_email
    worker = module.service_accounts.worker_email
  }
  viewers = {
    api = module.service_accounts.api_email
  }

  depends_on = [google_project_service.this]
}

module "pubsub" {
  source = "../pubsub"

  project_id     = var.project_id
  project_number = data.google_project.this.number
  region         = var.region

  publishers = {
    # The API's publisher sends both from the outbox; the worker only writes rows.
    api-registry-events     = { topic = "registry-events", email = module.service_accounts.api_email }
    api-webhook-dead-letter = { topic = "webhook-dead-letter", email = module.service_accounts.api_email }
  }

  depends_on = [google_project_service.this]
}

module "artifact_registry" {
  source = "../artifact-registry"

  project_id    = var.project_id
  region        = var.region
  repository_id = local.name

  writers = {
    deployer = module.service_accounts.deployer_email
  }

  depends_on = [google_project_service.this]
}

# ---------------------------------------------------------------------------
# Cloud Run

locals {
  # Settings the services read (shared/src/settings.rs); the rest keep their
  # defaults, which are the cloud values: CLOUD_TASKS_ENDPOINT empty (Google's
  # API with ADC), EGRESS_ALLOW_CIDRS empty (public addresses only),
  # ALLOW_HTTP_ENDPOINTS false, GOOGLE_OIDC_JWKS_URL Google's. WORKER_SHARED_SECRET
  # and WEBHOOK_SECRET_KEY are deliberately not set: in the cloud the worker
  # checks Cloud Tasks' OIDC token (for CLOUD_TASKS_INVOKER_SA, audience
  # WEBHOOK_WORKER_URL) in the Authorization header, and KMS wraps webhook
  # secrets' data keys. GOOGLE_CLOUD_REGION is not a setting; it is kept for
  # client libraries.
  common_env = {
    GOOGLE_CLOUD_PROJECT   = var.project_id
    GOOGLE_CLOUD_REGION    = var.region
    LOG_FORMAT             = "json"
    RUST_LOG               = var.rust_log
    SHUTDOWN_GRACE_SECONDS = "8"
    # The first queue's full name and how many there are: the CreateTask
    # parents of the API's first attempts and the worker's retries.
    CLOUD_TASKS_QUEUE       = module.tasks.id
    CLOUD_TASKS_QUEUE_COUNT = tostring(module.tasks.queue_count)
    # The tasks' OIDC identity; the worker admits only its tokens.
    CLOUD_TASKS_INVOKER_SA = module.service_accounts.tasks_invoker_email
    # The API (and migrate) seal webhook secrets with it, the worker opens them.
    WEBHOOK_SECRET_KMS_KEY = module.kms.crypto_key_id
    # Traces go to the collector sidecar, which exports them to Cloud Trace.
    OTEL_EXPORTER_OTLP_ENDPOINT = "http://localhost:4318"
    TRACE_SAMPLE_RATIO          = tostring(var.trace_sample_ratio)
  }

  # Versions are pinned to what Terraform wrote, so a new password or AUTH
  # string rolls out as a new revision instead of surprising running ones.
  common_secret_env = {
    DATABASE_URL = {
      secret  = module.secrets.secret_ids["database-url"]
      version = module.database.database_url_secret_version
    }
    REDIS_URL = {
      secret  = module.secrets.secret_ids["redis-url"]
      version = module.redis.redis_url_secret_version
    }
    REDIS_CA_CERT = {
      secret  = module.secrets.secret_ids["redis-ca-cert"]
      version = module.redis.ca_cert_secret_version
    }
  }

  # Public reads on the read replica, when there is one (the API only).
  read_replica_env = var.database.read_replica ? {
    DATABASE_READ_URL = {
      secret  = module.secrets.secret_ids["database-read-url"]
      version = module.database.database_read_url_secret_version
    }
  } : {}

  # The API's signing key: the generated first version unless a rotation
  # pinned another, and the replaced version, published but not used to sign,
  # while a rotation is under way (infra/README.md).
  platform_key_env = merge(
    {
      PLATFORM_SIGNING_KEY = {
        secret  = module.secrets.secret_ids["platform-signing-key"]
        version = coalesce(var.platform_signing_key_version, module.secrets.generated_versions["platform-signing-key"])
      }
    },
    var.platform_signing_key_previous_version == null ? {} : {
      PLATFORM_SIGNING_KEY_PREVIOUS = {
        secret  = module.secrets.secret_ids["platform-signing-key"]
        version = var.platform_signing_key_previous_version
      }
    },
  )

  cloud_sql_instances = [module.database.instance_connection_name]
}

# The worker is never public: internal ingress, and roles/run.invoker for
# the tasks-invoker service account alone (Cloud Tasks' OIDC identity).
module "worker" {
  source = "../cloud-run"

  project_id            = var.project_id
  region                = var.region
  name                  = local.worker_service_name
  image                 = var.worker_image
  service_account_email = module.service_accounts.worker_email

  cpu             = var.worker.cpu
  memory          = var.worker.memory
  min_instances   = var.worker.min_instances
  max_instances   = var.worker.max_instances
  concurrency     = var.worker.concurrency
  timeout_seconds = var.worker.timeout_seconds

  ingress = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  public  = false
  invokers = {
    tasks-invoker = "serviceAccount:${module.service_accounts.tasks_invoker_email}"
  }

  env = merge(local.common_env, {
    DATABASE_MAX_CONNECTIONS = tostring(var.worker.db_pool_size)
    # Its own push route, for the retries' tasks it creates, and the
    # audience it requires of every push's OIDC token.
    WEBHOOK_WORKER_URL = local.worker_push_url
  })
  secret_env          = local.common_secret_env
  cloud_sql_instances = local.cloud_sql_instances

  network             = module.networking.network_id
  subnetwork          = module.networking.subnetwork_id
  deletion_protection = var.services_deletion_protection

  # Secret versions and IAM must exist before a revision can start.
  depends_on = [module.secrets]
}

module "api" {
  source = "../cloud-run"

  project_id            = var.project_id
  region                = var.region
  name                  = local.api_service_name
  image                 = var.api_image
  service_account_email = module.service_accounts.api_email

  cpu             = var.api.cpu
  memory          = var.api.memory
  min_instances   = var.api.min_instances
  max_instances   = var.api.max_instances
  concurrency     = var.api.concurrency
  timeout_seconds = var.api.timeout_seconds

  ingress = "INGRESS_TRAFFIC_ALL"
  public  = true
  # The relay and the publisher work between requests: CPU must stay on.
  cpu_idle = false

  env = merge(local.common_env, {
    DATABASE_MAX_CONNECTIONS = tostring(var.api.db_pool_size)
    # Of those, discovery's tag walks (generic plans).
    DISCOVERY_DATABASE_CONNECTIONS = tostring(var.api.discovery_db_connections)
    PUBLIC_READ_CACHE_MAX_BYTES    = tostring(var.api.page_cache_mib * 1048576)
    # The worker's push route; also the audience of the tasks' OIDC token.
    WEBHOOK_WORKER_URL  = local.worker_push_url
    PUBSUB_EVENTS_TOPIC = module.pubsub.topic_ids["registry-events"]
    # Regional: Pub/Sub keeps ordering-key order only for publishes to one region.
    PUBSUB_ENDPOINT          = "https://${var.region}-pubsub.googleapis.com"
    PUBSUB_DEAD_LETTER_TOPIC = module.pubsub.topic_ids["webhook-dead-letter"]
    # Browser apps allowed to call the API; empty: no CORS headers at all.
    CORS_ALLOWED_ORIGINS = join(",", var.cors_allowed_origins)
  })
  secret_env          = merge(local.common_secret_env, local.platform_key_env, local.read_replica_env)
  cloud_sql_instances = local.cloud_sql_instances

  network             = module.networking.network_id
  subnetwork          = module.networking.subnetwork_id
  deletion_protection = var.services_deletion_protection

  depends_on = [module.secrets]
}

# Migrations: the API image with args ["migrate"], same secrets and Cloud SQL
# connection. The deploy pipeline executes it before shifting traffic.
module "migrate" {
  source = "../cloud-run-job"

  project_id            = var.project_id
  region                = var.region
  name                  = "migrate"
  image                 = var.api_image
  args                  = ["migrate"]
  service_account_email = module.service_accounts.api_email

  cpu    = "1"
  memory = "512Mi"

  env = merge(local.common_env, {
    # A job has no collector sidecar: no trace export.
    OTEL_EXPORTER_OTLP_ENDPOINT = ""
    DATABASE_MAX_CONNECTIONS    = "2"
  })
  secret_env          = local.common_secret_env
  cloud_sql_instances = local.cloud_sql_instances

  network             = module.networking.network_id
  subnetwork          = module.networking.subnetwork_id
  deletion_protection = var.services_deletion_protection

  depends_on = [module.secrets]
}

# ---------------------------------------------------------------------------
# Monitoring

module "monitoring" {
  source = "../monitoring"

  project_id         = var.project_id
  environment        = var.environment
  notification_email = var.notification_email

  services = {
    api    = module.api.name
    worker = module.worker.name
  }
  worker_service_name = module.worker.name
  sql_database_id     = module.database.database_id
  redis_instance_id   = module.redis.instance_id

  depends_on = [google_project_service.this]
}

# Postgres connection budget: every instance holds a pool, so the sum over
# the fleet (plus migrate and a few admin sessions) must fit max_connections.
check "database_connection_budget" {
  assert {
    condition = (
      var.database.max_connections == null ||
      try(var.api.max_instances * var.api.db_pool_size + var.worker.max_instances * var.worker.db_pool_size + 2 + 5 <= var.database.max_connections, true)
    )
    error_message = "api.max_instances x api.db_pool_size + worker.max_instances x worker.db_pool_size (+ migrate and admin) exceeds database.max_connections."
  }
}
