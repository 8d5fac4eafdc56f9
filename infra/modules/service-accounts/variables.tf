variable "project_id" {
  description = "GCP project that owns the service accounts."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "name_prefix" {
  description = "Prefix of the account ids (<prefix>-api, -worker, -tasks-invoker, -deployer)."
  type        = string
  default     = "agent-registry"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-16 lowercase letters, digits or hyphens (account ids are limited to 30 characters)."
  }
}

variable "trace_writer_role" {
  description = "Role that lets the services write traces: roles/cloudtrace.agent (Cloud Trace API) or roles/telemetry.tracesWriter (OTLP to telemetry.googleapis.com)."
  type        = string
  default     = "roles/cloudtrace.agent"

  validation {
    condition     = contains(["roles/cloudtrace.agent", "roles/telemetry.tracesWriter"], var.trace_writer_role)
    error_message = "trace_writer_role must be roles/cloudtrace.agent or roles/telemetry.tracesWriter."
  }
}
