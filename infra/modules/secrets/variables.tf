variable "project_id" {
  description = "GCP project that owns the secrets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "secrets" {
  description = <<-EOT
    Secrets to create, keyed by secret id. `accessors` maps a stable label
    (e.g. "api") to the service account email granted
    roles/secretmanager.secretAccessor on that secret alone. `generated = true`
    makes this module store a random value as the first version (for secrets
    nobody else produces); otherwise another module or an operator adds
    versions. `generated_as` says what the value is: "password" (that many
    letters and digits) or "base64_bytes" (the base64 of that many random
    bytes, e.g. 32 for an Ed25519 seed).
  EOT
  type = map(object({
    description      = string
    accessors        = map(string)
    generated        = optional(bool, false)
    generated_length = optional(number, 48)
    generated_as     = optional(string, "password")
  }))

  validation {
    condition     = alltrue([for id, _ in var.secrets : can(regex("^[A-Za-z0-9_-]{1,255}$", id))])
    error_message = "Secret ids may contain only letters, digits, '_' and '-' (at most 255 characters)."
  }

  validation {
    condition     = alltrue([for _, s in var.secrets : s.generated_length >= 32 && s.generated_length <= 128])
    error_message = "generated_length must be between 32 and 128."
  }

  validation {
    condition     = alltrue([for _, s in var.secrets : contains(["password", "base64_bytes"], s.generated_as)])
    error_message = "generated_as must be \"password\" or \"base64_bytes\"."
  }

  validation {
    condition     = alltrue(flatten([for _, s in var.secrets : [for label, _ in s.accessors : can(regex("^[a-z][a-z0-9-]*$", label))]]))
    error_message = "Accessor labels must be lowercase identifiers such as \"api\" or \"worker\"."
  }
}

variable "replica_locations" {
  description = "Regions holding the secret payloads (user-managed replication). Empty means automatic replication."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for l in var.replica_locations : can(regex("^[a-z]+-[a-z]+[0-9]$", l))])
    error_message = "replica_locations must be region names such as us-west1."
  }
}

variable "labels" {
  description = "Labels applied to every secret."
  type        = map(string)
  default     = {}
}
