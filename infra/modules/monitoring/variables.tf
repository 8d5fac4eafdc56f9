variable "project_id" {
  description = "GCP project monitored (also the scoping project of the policies and dashboard)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "environment" {
  description = "Environment name shown in alert and dashboard titles."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "notification_email" {
  description = "Address that receives alert notifications."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an email address."
  }
}

variable "services" {
  description = "Cloud Run services to watch, label => service name, e.g. { api = \"agent-registry-api\", worker = \"agent-registry-worker\" }."
  type        = map(string)

  validation {
    condition     = length(var.services) > 0
    error_message = "services must name at least one Cloud Run service."
  }
}

variable "worker_service_name" {
  description = "Cloud Run service that delivers webhooks and logs `delivery dead` and delivery outcomes."
  type        = string
}

variable "sql_database_id" {
  description = "PROJECT:INSTANCE of the Cloud SQL instance (database_id label of cloudsql metrics)."
  type        = string

  validation {
    condition     = can(regex("^[^:]+:[a-z0-9-]+$", var.sql_database_id))
    error_message = "sql_database_id must be PROJECT:INSTANCE."
  }
}

variable "redis_instance_id" {
  description = "Full Memorystore instance id projects/P/locations/R/instances/N (instance_id label of redis metrics)."
  type        = string
}

variable "error_rate_threshold" {
  description = "Fraction of requests answered 5xx over which a service alerts (0.01 = 1%)."
  type        = number
  default     = 0.01

  validation {
    condition     = var.error_rate_threshold > 0 && var.error_rate_threshold < 1
    error_message = "error_rate_threshold must be in (0, 1)."
  }
}

variable "latency_p95_threshold_ms" {
  description = "p95 request latency (ms) over which a service alerts."
  type        = number
  default     = 1000

  validation {
    condition     = var.latency_p95_threshold_ms > 0
    error_message = "latency_p95_threshold_ms must be positive."
  }
}

variable "cpu_threshold" {
  description = "CPU utilisation (0-1) over which Cloud Run and Cloud SQL alert after 10 minutes."
  type        = number
  default     = 0.8

  validation {
    condition     = var.cpu_threshold > 0 && var.cpu_threshold <= 1
    error_message = "cpu_threshold must be in (0, 1]."
  }
}

variable "connection_failure_threshold" {
  description = "Database or Redis connection failures (logged by the services) within 5 minutes that raise an alert."
  type        = number
  default     = 5

  validation {
    condition     = var.connection_failure_threshold >= 0
    error_message = "connection_failure_threshold must not be negative."
  }
}

variable "outbox_backlog_age_threshold_seconds" {
  description = "p95 age (s) of the oldest unpublished outbox row over which an alert fires after 10 minutes."
  type        = number
  default     = 300

  validation {
    condition     = var.outbox_backlog_age_threshold_seconds > 0
    error_message = "outbox_backlog_age_threshold_seconds must be positive."
  }
}
