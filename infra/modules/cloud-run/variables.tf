variable "project_id" {
  description = "GCP project of the service."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Cloud Run region."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "name" {
  description = "Service name."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$", var.name))
    error_message = "name must be a lowercase RFC 1035 label of at most 49 characters."
  }
}

variable "image" {
  description = "Full container image reference, by digest (…@sha256:…) or tag (…:git-sha)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s:@]+(:[\\w][\\w.-]{0,127}|@sha256:[0-9a-f]{64})$", var.image))
    error_message = "image must be a full reference with a tag or a sha256 digest, e.g. us-west1-docker.pkg.dev/P/agent-registry/api@sha256:…"
  }
}

variable "args" {
  description = "Arguments passed to the image entrypoint (empty: the image's CMD)."
  type        = list(string)
  default     = []
}

variable "service_account_email" {
  description = "Identity the revisions run as."
  type        = string

  validation {
    condition     = can(regex("@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a service account email."
  }
}

variable "cpu" {
  description = "vCPUs per instance (\"1\", \"2\", \"4\", \"8\")."
  type        = string

  validation {
    condition     = contains(["1", "2", "4", "8"], var.cpu)
    error_message = "cpu must be one of 1, 2, 4, 8."
  }
}

variable "memory" {
  description = "Memory per instance, e.g. 512Mi or 2Gi (4 CPUs need at least 2Gi)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 512Mi or 2Gi."
  }
}

variable "min_instances" {
  description = "Minimum instances kept warm (0 allows scale to zero)."
  type        = number

  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 1000 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number between 0 and 1000."
  }
}

variable "max_instances" {
  description = "Maximum instances."
  type        = number

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number between 1 and 1000."
  }
}

variable "concurrency" {
  description = "Maximum concurrent requests per instance."
  type        = number

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "timeout_seconds" {
  description = "Request timeout in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be between 1 and 3600."
  }
}

variable "cpu_idle" {
  description = "Throttle CPU outside requests (request-based billing). Set false for services that work in the background between requests."
  type        = bool
  default     = true
}

variable "ingress" {
  description = "INGRESS_TRAFFIC_ALL (public API) or INGRESS_TRAFFIC_INTERNAL_ONLY (worker; Cloud Tasks in the same project still reaches the run.app URL)."
  type        = string

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "public" {
  description = "Grant roles/run.invoker to allUsers (unauthenticated access). Only for the public API; requires ingress INGRESS_TRAFFIC_ALL."
  type        = bool
  default     = false
}

variable "invokers" {
  description = "Extra principals granted roles/run.invoker on this service alone, keyed by a stable label, e.g. { tasks = \"serviceAccount:…\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.invokers) : can(regex("^(serviceAccount|user|group):", m))])
    error_message = "invokers must be IAM members (serviceAccount:, user: or group:); use `public` for allUsers."
  }
}

variable "env" {
  description = "Plain environment variables. Do not set PORT (Cloud Run sets it)."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.env), "PORT")
    error_message = "PORT is reserved by Cloud Run."
  }
}

variable "secret_env" {
  description = "Environment variables read from Secret Manager: NAME => { secret = short secret id, version = number or \"latest\" }."
  type = map(object({
    secret  = string
    version = string
  }))
  default = {}

  validation {
    condition     = alltrue([for v in values(var.secret_env) : can(regex("^([0-9]+|latest)$", v.version))])
    error_message = "secret_env versions must be a number or \"latest\"."
  }
}

variable "cloud_sql_instances" {
  description = "Cloud SQL connection names (PROJECT:REGION:INSTANCE) mounted as Unix sockets under /cloudsql."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.cloud_sql_instances : can(regex("^[^:]+:[a-z0-9-]+:[a-z0-9-]+$", c))])
    error_message = "cloud_sql_instances must be PROJECT:REGION:INSTANCE connection names."
  }
}

variable "network" {
  description = "VPC network (id or name) for Direct VPC egress."
  type        = string

  validation {
    condition     = length(var.network) > 0
    error_message = "network must not be empty."
  }
}

variable "subnetwork" {
  description = "Subnet (id or name) for Direct VPC egress."
  type        = string

  validation {
    condition     = length(var.subnetwork) > 0
    error_message = "subnetwork must not be empty."
  }
}

variable "vpc_egress" {
  description = "PRIVATE_RANGES_ONLY (only RFC 1918 traffic through the VPC; webhooks to the internet go out directly) or ALL_TRAFFIC."
  type        = string
  default     = "PRIVATE_RANGES_ONLY"

  validation {
    condition     = contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], var.vpc_egress)
    error_message = "vpc_egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}

variable "container_port" {
  description = "Port the container listens on (the binaries read PORT, default 8080)."
  type        = number
  default     = 8080

  validation {
    condition     = var.container_port > 0 && var.container_port < 65536
    error_message = "container_port must be a TCP port."
  }
}

variable "startup_probe_path" {
  description = "HTTP path of the startup probe (ready: Postgres and Redis answer)."
  type        = string
  default     = "/readyz"

  validation {
    condition     = startswith(var.startup_probe_path, "/")
    error_message = "startup_probe_path must start with /."
  }
}

variable "liveness_probe_path" {
  description = "HTTP path of the liveness probe (the process is alive)."
  type        = string
  default     = "/healthz"

  validation {
    condition     = startswith(var.liveness_probe_path, "/")
    error_message = "liveness_probe_path must start with /."
  }
}

variable "deletion_protection" {
  description = "Prevent Terraform from deleting the service."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on the service."
  type        = map(string)
  default     = {}
}

variable "otel_collector_image" {
  type        = string
  description = "Image of the OpenTelemetry Collector sidecar that forwards the app's traces to Cloud Trace (Google's build of the collector)."
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/google-cloud-opentelemetry-collector/otelcol-google:0.122.1"

  validation {
    condition     = can(regex("^[a-z0-9.-]+(/[A-Za-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.otel_collector_image))
    error_message = "otel_collector_image must be a full image reference with a tag or digest."
  }
}
