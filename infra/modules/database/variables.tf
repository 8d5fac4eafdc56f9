variable "project_id" {
  description = "GCP project that owns the instance."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Region of the Cloud SQL instance (same as Cloud Run)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "instance_name" {
  description = "Cloud SQL instance name. A deleted name cannot be reused for about a week."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,84}[a-z0-9]$", var.instance_name))
    error_message = "instance_name must start with a letter and contain only lowercase letters, digits and hyphens."
  }
}

variable "database_version" {
  description = "Cloud SQL database version. The application and its migrations target Postgres 16."
  type        = string
  default     = "POSTGRES_16"

  validation {
    condition     = can(regex("^POSTGRES_1[6-9]$", var.database_version))
    error_message = "database_version must be POSTGRES_16 or newer."
  }
}

variable "tier" {
  description = "Machine tier, e.g. db-f1-micro (staging) or db-custom-2-3840 (production)."
  type        = string

  validation {
    condition     = can(regex("^db-(f1-micro|g1-small|custom-[0-9]+-[0-9]+|perf-optimized-N-[0-9]+)$", var.tier))
    error_message = "tier must be db-f1-micro, db-g1-small or db-custom-<vCPUs>-<MiB>."
  }
}

variable "disk_size_gb" {
  description = "Initial SSD size in GB (grows automatically up to disk_autoresize_limit_gb)."
  type        = number

  validation {
    condition     = var.disk_size_gb >= 10 && var.disk_size_gb <= 65536
    error_message = "disk_size_gb must be between 10 and 65536."
  }
}

variable "disk_autoresize_limit_gb" {
  description = "Upper bound for automatic storage growth in GB; 0 means no limit."
  type        = number
  default     = 0

  validation {
    condition     = var.disk_autoresize_limit_gb >= 0
    error_message = "disk_autoresize_limit_gb must be 0 (unlimited) or positive."
  }
}

variable "high_availability" {
  description = "REGIONAL availability (standby in another zone, automatic failover) when true; ZONAL otherwise."
  type        = bool
}

variable "deletion_protection" {
  description = "Protect the instance from deletion, both in Terraform and in the Cloud SQL API."
  type        = bool
}

variable "backup_start_time" {
  description = "Start of the daily backup window, HH:MM in UTC."
  type        = string
  default     = "03:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup_start_time))
    error_message = "backup_start_time must be HH:MM (24 h, UTC)."
  }
}

variable "retained_backups" {
  description = "Number of daily automated backups kept."
  type        = number
  default     = 7

  validation {
    condition     = var.retained_backups >= 1 && var.retained_backups <= 365
    error_message = "retained_backups must be between 1 and 365."
  }
}

variable "transaction_log_retention_days" {
  description = "Days of write-ahead log kept for point-in-time recovery."
  type        = number
  default     = 7

  validation {
    condition     = var.transaction_log_retention_days >= 1 && var.transaction_log_retention_days <= 7
    error_message = "transaction_log_retention_days must be between 1 and 7 for the ENTERPRISE edition."
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window: day 1 (Monday) to 7 (Sunday), hour 0-23 UTC."
  type = object({
    day  = number
    hour = number
  })
  default = {
    day  = 7
    hour = 4
  }

  validation {
    condition     = var.maintenance_window.day >= 1 && var.maintenance_window.day <= 7 && var.maintenance_window.hour >= 0 && var.maintenance_window.hour <= 23
    error_message = "maintenance_window.day must be 1-7 and hour 0-23."
  }
}

variable "private_network" {
  description = "VPC network id for the private IP. Pass the networking module's private_services_network output so the instance waits for the peering."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/global/networks/[^/]+$", var.private_network))
    error_message = "private_network must be a network id: projects/P/global/networks/N."
  }
}

variable "allocated_ip_range" {
  description = "Name of the private service access range the instance takes its IP from."
  type        = string

  validation {
    condition     = length(var.allocated_ip_range) > 0
    error_message = "allocated_ip_range must not be empty."
  }
}

variable "database_name" {
  description = "Application database."
  type        = string
  default     = "agent_registry"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase Postgres identifier."
  }
}

variable "user_name" {
  description = "Application database user (built-in password authentication)."
  type        = string
  default     = "api_user"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.user_name))
    error_message = "user_name must be a lowercase Postgres identifier."
  }
}

variable "password_secret" {
  description = "Secret Manager secret resource id (projects/P/secrets/S, the secrets module's secret_names output, so this module waits for it) that receives the user's password."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]+$", var.password_secret))
    error_message = "password_secret must be projects/P/secrets/S."
  }
}

variable "database_url_secret" {
  description = "Secret Manager secret resource id (projects/P/secrets/S, the secrets module's secret_names output, so this module waits for it) that receives the full postgres:// URL the services use."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]+$", var.database_url_secret))
    error_message = "database_url_secret must be projects/P/secrets/S."
  }
}

variable "labels" {
  description = "User labels on the instance."
  type        = map(string)
  default     = {}
}

variable "max_connections" {
  description = "Postgres max_connections; null keeps the tier's default. Size it for sum(max instances x DATABASE_MAX_CONNECTIONS) over the services plus the migrate job and a few admin connections."
  type        = number
  default     = null

  validation {
    condition     = try(var.max_connections >= 25 && var.max_connections <= 4000, var.max_connections == null)
    error_message = "max_connections must be between 25 and 4000."
  }
}

variable "read_replica" {
  description = "Add a read replica of the instance, for the API's public reads (DATABASE_READ_URL)."
  type        = bool
  default     = false
}

variable "database_read_url_secret" {
  description = "Secret Manager secret (name) that receives the replica's postgres:// URL; needed with read_replica."
  type        = string
  default     = null
}
