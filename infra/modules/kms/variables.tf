variable "project_id" {
  description = "GCP project of the key ring."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Key ring location (the services' region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "key_ring_name" {
  description = "Key ring name. Key rings cannot be deleted: the name stays taken."
  type        = string
  default     = "agent-registry"
}

variable "key_name" {
  description = "Name of the key that wraps webhook secrets' data keys."
  type        = string
  default     = "webhook-secrets"
}

variable "rotation_period" {
  description = "How often KMS makes a new primary key version (seconds, with an s)."
  type        = string
  default     = "7776000s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.rotation_period))
    error_message = "rotation_period must be seconds, e.g. 7776000s."
  }
}

variable "encrypters" {
  description = "Service accounts that may encrypt (wrap) with the key, by a static key."
  type        = map(string)
  default     = {}
}

variable "decrypters" {
  description = "Service accounts that may decrypt (unwrap) with the key, by a static key."
  type        = map(string)
  default     = {}
}
