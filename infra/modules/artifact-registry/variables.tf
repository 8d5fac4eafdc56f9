variable "project_id" {
  description = "GCP project of the repository."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Repository location (same region as Cloud Run, so pulls stay regional)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "repository_id" {
  description = "Docker repository name."
  type        = string
  default     = "agent-registry"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.repository_id))
    error_message = "repository_id must be lowercase letters, digits and hyphens."
  }
}

variable "keep_recent_versions" {
  description = "Versions of each image (api, worker) always kept, whatever their age: enough to roll back several deploys."
  type        = number
  default     = 20

  validation {
    condition     = var.keep_recent_versions >= 5 && var.keep_recent_versions <= 1000
    error_message = "keep_recent_versions must be between 5 and 1000."
  }
}

variable "delete_older_than_days" {
  description = "Versions older than this are deleted unless kept by keep_recent_versions."
  type        = number
  default     = 30

  validation {
    condition     = var.delete_older_than_days >= 7
    error_message = "delete_older_than_days must be at least 7."
  }
}

variable "untagged_older_than_days" {
  description = "Untagged versions (superseded pushes, build cache layers) older than this are deleted."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_older_than_days >= 1
    error_message = "untagged_older_than_days must be at least 1."
  }
}

variable "writers" {
  description = "Service account emails granted roles/artifactregistry.writer on this repository alone, keyed by a stable label."
  type        = map(string)
  default     = {}
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for customer-managed encryption; null keeps Google-managed encryption. Can only be set at creation."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels on the repository."
  type        = map(string)
  default     = {}
}

variable "immutable_tags" {
  description = "Refuse to move an existing tag to a different image."
  type        = bool
  default     = true
}
