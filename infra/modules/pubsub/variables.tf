variable "project_id" {
  description = "GCP project of the topics."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "project_number" {
  description = "Project number, to name the Pub/Sub service agent that forwards undeliverable messages to the dead-letter topic."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.project_number))
    error_message = "project_number must be digits."
  }
}

variable "region" {
  description = "The only region where messages are stored (message storage policy)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "topics" {
  description = "Topics by name, with how long published messages are retained (for replay/seek)."
  type = map(object({
    message_retention_duration = string
  }))
  default = {
    # Domain events from the outbox (agent registered, job changed, …).
    "registry-events" = { message_retention_duration = "604800s" }
    # Webhook deliveries that exhausted their Cloud Tasks attempts.
    "webhook-dead-letter" = { message_retention_duration = "2678400s" }
  }

  validation {
    condition     = alltrue([for name, t in var.topics : can(regex("^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$", name)) && can(regex("^[0-9]+s$", t.message_retention_duration))])
    error_message = "Topic names must be valid Pub/Sub names and retention must be a duration in seconds such as 604800s."
  }
}

variable "subscription_dead_letter_topic" {
  description = "Topic receiving messages that subscriptions failed to process max_delivery_attempts times."
  type        = string
  default     = "subscription-dead-letter"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$", var.subscription_dead_letter_topic))
    error_message = "subscription_dead_letter_topic must be a valid Pub/Sub topic name."
  }
}

variable "subscriptions" {
  description = "Pull subscriptions by name. Each one dead-letters to subscription_dead_letter_topic after max_delivery_attempts and retries with exponential backoff."
  type = map(object({
    topic                      = string
    ack_deadline_seconds       = optional(number, 60)
    message_retention_duration = optional(string, "604800s")
    max_delivery_attempts      = optional(number, 10)
    minimum_backoff            = optional(string, "10s")
    maximum_backoff            = optional(string, "600s")
    # Deliver messages with one ordering key (the events of the agents or jobs sharing it) in order.
    enable_message_ordering = optional(bool, false)
  }))
  default = {
    # The consumers' subscription to domain events (analytics / audit), in order per
    # aggregate; `cargo xtask dev` creates it on the emulator under the same name.
    "registry-events-audit" = { topic = "registry-events", enable_message_ordering = true }
    # Operators' queue of dead webhook deliveries (alerting, replay tooling).
    "webhook-dead-letter-ops" = { topic = "webhook-dead-letter", max_delivery_attempts = 5 }
  }

  validation {
    condition = alltrue([for _, s in var.subscriptions :
      s.max_delivery_attempts >= 5 && s.max_delivery_attempts <= 100 &&
      s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600
    ])
    error_message = "max_delivery_attempts must be 5-100 and ack_deadline_seconds 10-600."
  }
}

variable "publishers" {
  description = "Who may publish where: label => { topic = topic name, email = service account email }."
  type = map(object({
    topic = string
    email = string
  }))
  default = {}
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for customer-managed encryption of the topics; null keeps Google-managed encryption."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels on topics and subscriptions."
  type        = map(string)
  default     = {}
}
