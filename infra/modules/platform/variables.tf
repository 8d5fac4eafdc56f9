variable "project_id" {
  description = "GCP project of the environment (one project per environment)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Region of every regional resource."
  type        = string
  default     = "us-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "environment" {
  description = "Environment name (resource names, labels, alert titles)."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "api_image" {
  description = "API image, full reference with digest or tag (passed by the deploy tool), e.g. us-west1-docker.pkg.dev/P/agent-registry/api@sha256:…"
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s:@]+(:[\\w][\\w.-]{0,127}|@sha256:[0-9a-f]{64})$", var.api_image))
    error_message = "api_image must be a full image reference with a tag or sha256 digest."
  }
}

variable "worker_image" {
  description = "Webhook worker image, full reference with digest or tag (passed by the deploy tool)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s:@]+(:[\\w][\\w.-]{0,127}|@sha256:[0-9a-f]{64})$", var.worker_image))
    error_message = "worker_image must be a full image reference with a tag or sha256 digest."
  }
}

variable "notification_email" {
  description = "Where alerts are sent."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an email address."
  }
}

variable "subnet_cidr" {
  description = "Serverless subnet for Direct VPC egress (about 2 IPs per Cloud Run instance)."
  type        = string

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be an IPv4 CIDR."
  }
}

variable "database" {
  description = "Cloud SQL sizing and protection."
  type = object({
    tier                = string
    disk_size_gb        = number
    high_availability   = bool
    deletion_protection = bool
    retained_backups    = optional(number, 7)
    max_connections     = optional(number)
    # A Cloud SQL read replica for the API's public reads (DATABASE_READ_URL).
    read_replica = optional(bool, false)
  })

  validation {
    condition     = can(regex("^db-", var.database.tier)) && var.database.disk_size_gb >= 10
    error_message = "database.tier must be a Cloud SQL tier (db-…) and disk_size_gb at least 10."
  }
}

variable "redis" {
  description = "Memorystore sizing."
  type = object({
    tier           = string
    memory_size_gb = number
    replica_count  = optional(number)
  })

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis.tier) && var.redis.memory_size_gb >= 1
    error_message = "redis.tier must be BASIC or STANDARD_HA and memory_size_gb at least 1."
  }
}

variable "api" {
  description = "API service sizing. db_pool_size becomes DATABASE_MAX_CONNECTIONS; discovery_db_connections (DISCOVERY_DATABASE_CONNECTIONS) is carved from it for the statements that run generic plans (discovery by tag, job creation), 0 to share."
  type = object({
    cpu                      = string
    memory                   = string
    min_instances            = number
    max_instances            = number
    concurrency              = number
    timeout_seconds          = optional(number, 300)
    db_pool_size             = number
    discovery_db_connections = optional(number, 1)
    # PUBLIC_READ_CACHE_MAX_BYTES, in MiB: the page cache's bound.
    page_cache_mib = optional(number, 32)
  })

  validation {
    condition     = var.api.min_instances <= var.api.max_instances && var.api.db_pool_size >= 1
    error_message = "api.min_instances must not exceed max_instances, and db_pool_size must be at least 1."
  }

  validation {
    condition     = var.api.discovery_db_connections >= 0 && floor(var.api.discovery_db_connections) == var.api.discovery_db_connections && (var.api.discovery_db_connections == 0 || var.api.discovery_db_connections < var.api.db_pool_size)
    error_message = "api.discovery_db_connections must be a whole number, 0 or below db_pool_size, which it is carved from."
  }

  # In the soak (docs/PERFORMANCE.md) the API peaked at ~82 MB with a 32 MiB
  # page cache, so ~50 MB without: 128 MiB for it leaves headroom.
  validation {
    condition     = var.api.page_cache_mib >= 0 && var.api.page_cache_mib + 128 <= tonumber(regex("^[0-9]+", var.api.memory)) * (can(regex("Gi$", var.api.memory)) ? 1024 : 1)
    error_message = "api.page_cache_mib plus 128 MiB for the API itself must fit in api.memory."
  }
}

variable "worker" {
  description = "Webhook worker sizing. db_pool_size becomes DATABASE_MAX_CONNECTIONS."
  type = object({
    cpu             = string
    memory          = string
    min_instances   = number
    max_instances   = number
    concurrency     = number
    timeout_seconds = optional(number, 60)
    db_pool_size    = number
  })

  validation {
    condition     = var.worker.min_instances <= var.worker.max_instances && var.worker.db_pool_size >= 1
    error_message = "worker.min_instances must not exceed max_instances, and db_pool_size must be at least 1."
  }
}

variable "services_deletion_protection" {
  description = "Terraform-level deletion protection of the Cloud Run services and the migrate job."
  type        = bool
  default     = true
}

variable "rust_log" {
  description = "RUST_LOG filter for the services."
  type        = string
  default     = "info"

  validation {
    condition     = length(trimspace(var.rust_log)) > 0
    error_message = "rust_log must not be empty."
  }
}

variable "delivery_queues" {
  description = "Cloud Tasks delivery queues: how many (one dispatches at most 500 tasks/s), and each one's dispatch rate and tasks in flight. Deliveries per second are at most count × max_dispatches_per_second."
  type = object({
    count                     = optional(number, 1)
    max_dispatches_per_second = optional(number, 10)
    max_concurrent_dispatches = optional(number, 100)
  })
  default = {}

  validation {
    condition     = var.delivery_queues.count >= 1 && var.delivery_queues.count <= 64
    error_message = "delivery_queues.count must be from 1 to 64."
  }
}

variable "tasks_logging_sampling_ratio" {
  description = "Fraction of Cloud Tasks operations written to Cloud Logging."
  type        = number
  default     = 1

  validation {
    condition     = var.tasks_logging_sampling_ratio >= 0 && var.tasks_logging_sampling_ratio <= 1
    error_message = "tasks_logging_sampling_ratio must be between 0 and 1."
  }
}

variable "trace_sample_ratio" {
  type        = number
  description = "Share of new traces sampled (0.1 in production, 1.0 in staging)."
  default     = 1.0

  validation {
    condition     = var.trace_sample_ratio >= 0 && var.trace_sample_ratio <= 1
    error_message = "trace_sample_ratio must be between 0 and 1."
  }
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Origins (https://host[:port]) of browser apps allowed to call the API (CORS_ALLOWED_ORIGINS); empty: none."
  default     = []

  validation {
    condition     = alltrue([for origin in var.cors_allowed_origins : can(regex("^https?://[a-z0-9.-]+(:[0-9]+)?$", origin))])
    error_message = "Each of cors_allowed_origins must be a bare origin such as https://app.example.com (no path, no trailing slash)."
  }
}

variable "platform_signing_key_version" {
  description = "Version of the platform-signing-key secret the API signs with; null: the version Terraform generated. Set it to the new version when rotating."
  type        = string
  default     = null

  validation {
    condition     = var.platform_signing_key_version == null || can(regex("^[0-9]+$", var.platform_signing_key_version))
    error_message = "platform_signing_key_version must be a version number."
  }
}

variable "platform_signing_key_previous_version" {
  description = "During a key rotation, the replaced version of platform-signing-key: published in the JWKS so what it signed still verifies, never used to sign; null: none."
  type        = string
  default     = null

  validation {
    condition     = var.platform_signing_key_previous_version == null || can(regex("^[0-9]+$", var.platform_signing_key_previous_version))
    error_message = "platform_signing_key_previous_version must be a version number."
  }
}
