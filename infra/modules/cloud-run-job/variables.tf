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
  description = "Job name."
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
  description = "Identity the job executions run as."
  type        = string

  validation {
    condition     = can(regex("@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a service account email."
  }
}

variable "cpu" {
  description = "vCPUs per task (\"1\", \"2\", \"4\", \"8\")."
  type        = string

  validation {
    condition     = contains(["1", "2", "4", "8"], var.cpu)
    error_message = "cpu must be one of 1, 2, 4, 8."
  }
}

variable "memory" {
  description = "Memory per task, e.g. 512Mi or 2Gi (4 CPUs need at least 2Gi)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 512Mi or 2Gi."
  }
}

variable "env" {
  description = "Plain environment variables."
  type        = map(string)
  default     = {}
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

variable "deletion_protection" {
  description = "Prevent Terraform from deleting the job."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on the job."
  type        = map(string)
  default     = {}
}

variable "task_timeout_seconds" {
  description = "Maximum run time of one task attempt."
  type        = number
  default     = 600

  validation {
    condition     = var.task_timeout_seconds >= 1 && var.task_timeout_seconds <= 86400
    error_message = "task_timeout_seconds must be between 1 and 86400."
  }
}

variable "max_retries" {
  description = "Retries of a failed task. Migrations are not retried blindly: the deploy stops and someone looks."
  type        = number
  default     = 0

  validation {
    condition     = var.max_retries >= 0 && var.max_retries <= 10
    error_message = "max_retries must be between 0 and 10."
  }
}
