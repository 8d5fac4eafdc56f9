variable "project_id" {
  description = "GCP project that owns the instance."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Region of the Memorystore instance (same as Cloud Run)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "name" {
  description = "Memorystore instance id."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2-40 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tier" {
  description = "BASIC (single node, staging) or STANDARD_HA (replicated with automatic failover, production)."
  type        = string

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  description = "Memory size in GiB."
  type        = number

  validation {
    condition     = var.memory_size_gb >= 1 && var.memory_size_gb <= 300 && floor(var.memory_size_gb) == var.memory_size_gb
    error_message = "memory_size_gb must be a whole number between 1 and 300."
  }
}

variable "redis_version" {
  description = "Redis engine version."
  type        = string
  default     = "REDIS_7_2"

  validation {
    condition     = can(regex("^REDIS_7_[0-9]$", var.redis_version))
    error_message = "redis_version must be REDIS_7_x."
  }
}

variable "authorized_network" {
  description = "VPC network id. Pass the networking module's private_services_network output so the instance waits for the peering."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/global/networks/[^/]+$", var.authorized_network))
    error_message = "authorized_network must be a network id: projects/P/global/networks/N."
  }
}

variable "reserved_ip_range" {
  description = "Name of the private service access range the instance takes its IPs from."
  type        = string

  validation {
    condition     = length(var.reserved_ip_range) > 0
    error_message = "reserved_ip_range must not be empty."
  }
}

variable "maintenance_day" {
  description = "Day of the weekly maintenance window."
  type        = string
  default     = "SUNDAY"

  validation {
    condition     = contains(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"], var.maintenance_day)
    error_message = "maintenance_day must be a weekday name in capitals."
  }
}

variable "maintenance_hour" {
  description = "Start hour (UTC) of the weekly maintenance window."
  type        = number
  default     = 5

  validation {
    condition     = var.maintenance_hour >= 0 && var.maintenance_hour <= 23
    error_message = "maintenance_hour must be 0-23."
  }
}

variable "redis_url_secret" {
  description = "Secret Manager secret resource id (projects/P/secrets/S) that receives the rediss:// URL."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]+$", var.redis_url_secret))
    error_message = "redis_url_secret must be projects/P/secrets/S."
  }
}

variable "ca_cert_secret" {
  description = "Secret Manager secret resource id (projects/P/secrets/S) that receives the instance's server CA certificates (PEM), which clients need to verify TLS."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]+$", var.ca_cert_secret))
    error_message = "ca_cert_secret must be projects/P/secrets/S."
  }
}

variable "labels" {
  description = "Labels on the instance."
  type        = map(string)
  default     = {}
}

variable "replica_count" {
  description = "Read replicas (1-5) for STANDARD_HA instances of at least 5 GB; null disables read replicas (STANDARD_HA still has one standby)."
  type        = number
  default     = null

  validation {
    condition     = try(var.replica_count >= 1 && var.replica_count <= 5, var.replica_count == null)
    error_message = "replica_count must be null or between 1 and 5."
  }
}
