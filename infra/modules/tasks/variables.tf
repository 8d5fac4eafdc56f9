variable "project_id" {
  description = "GCP project of the queue."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Queue location (same region as the worker)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "name" {
  description = "Queue name. A deleted queue's name cannot be reused for 7 days."
  type        = string
  default     = "webhook-delivery"

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,100}$", var.name))
    error_message = "name may contain letters, digits and hyphens (at most 100)."
  }
}

variable "queue_count" {
  description = "Queues alike, name then name-1, name-2, …: one dispatches at most 500 tasks/s, so the delivery rate is at most queue_count × max_dispatches_per_second. The API must be deployed with the same count (CLOUD_TASKS_QUEUE_COUNT) before queues are removed, and a removed queue's tasks are lost (the relay's sweep queues those deliveries again)."
  type        = number
  default     = 1

  validation {
    condition     = var.queue_count >= 1 && var.queue_count <= 64 && floor(var.queue_count) == var.queue_count
    error_message = "queue_count must be a whole number from 1 to 64 (CLOUD_TASKS_QUEUE_COUNT's bounds)."
  }
}

variable "max_dispatches_per_second" {
  description = "Rate at which each queue dispatches tasks (10 by default)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_dispatches_per_second > 0 && var.max_dispatches_per_second <= 500
    error_message = "max_dispatches_per_second must be in (0, 500]."
  }
}

variable "max_concurrent_dispatches" {
  description = "Tasks in flight at once in each queue (caps the load on the worker: queue_count times this in all)."
  type        = number
  default     = 100

  validation {
    condition     = var.max_concurrent_dispatches >= 1 && var.max_concurrent_dispatches <= 5000
    error_message = "max_concurrent_dispatches must be between 1 and 5000."
  }
}

variable "max_attempts" {
  description = "Pushes of one task including the first, for the worker failing to answer (the crash net; receivers' failures are retried by the worker's own schedule). With the defaults about two hours of worker outage are covered; past that the relay's sweep re-queues the delivery."
  type        = number
  default     = 20

  validation {
    condition     = var.max_attempts >= 1 && var.max_attempts <= 100
    error_message = "max_attempts must be between 1 and 100."
  }
}

variable "min_backoff_seconds" {
  description = "Shortest wait before the queue pushes a task again after the worker failed to answer."
  type        = number
  default     = 5

  validation {
    condition     = var.min_backoff_seconds >= 0.1 && var.min_backoff_seconds <= 3600
    error_message = "min_backoff_seconds must be between 0.1 and 3600."
  }
}

variable "max_backoff_seconds" {
  description = "Longest wait between pushes of a task the worker failed to answer."
  type        = number
  default     = 600

  validation {
    condition     = var.max_backoff_seconds >= 1 && var.max_backoff_seconds <= 3600
    error_message = "max_backoff_seconds must be between 1 and 3600."
  }
}

variable "max_doublings" {
  description = "Times the backoff doubles before growing linearly up to max_backoff."
  type        = number
  default     = 5

  validation {
    condition     = var.max_doublings >= 0 && var.max_doublings <= 16
    error_message = "max_doublings must be between 0 and 16."
  }
}

variable "logging_sampling_ratio" {
  description = "Fraction of task operations logged to Cloud Logging (0 disables, 1 logs all)."
  type        = number
  default     = 1

  validation {
    condition     = var.logging_sampling_ratio >= 0 && var.logging_sampling_ratio <= 1
    error_message = "logging_sampling_ratio must be between 0 and 1."
  }
}

variable "enqueuers" {
  description = "Service account emails granted roles/cloudtasks.enqueuer on these queues alone, keyed by a stable label."
  type        = map(string)
  default     = {}
}

variable "viewers" {
  description = "Service account emails granted roles/cloudtasks.viewer (GetTask) on these queues alone, keyed by a stable label."
  type        = map(string)
  default     = {}
}
