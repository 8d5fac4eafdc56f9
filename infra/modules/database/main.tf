# Cloud SQL for PostgreSQL: private IP only, TLS required, daily backups with
# point-in-time recovery, REGIONAL HA and deletion protection where asked.

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_6:ssl_mode is ENCRYPTED_ONLY, so every connection must use TLS; checkov accepts only TRUSTED_CLIENT_CERTIFICATE_REQUIRED, which would require client certificates on every direct connection. The instance has no public IP and the services connect to its private IP (Google's recommendation for private-IP instances) with password auth over TLS.
  #checkov:skip=CKV_GCP_79:The application, its sqlx migrations and the local stack (postgres:16) are built and tested against Postgres 16; moving to 17 is a deliberate upgrade, not a scanner default.
  #checkov:skip=CKV2_GCP_13:log_duration writes one log line per statement; at API request rates that is a large Cloud Logging bill for data Query Insights already records per query shape.
  project             = var.project_id
  name                = var.instance_name
  region              = var.region
  database_version    = var.database_version
  deletion_protection = var.deletion_protection

  settings {
    # db-f1-micro and db-custom-* tiers exist only in the ENTERPRISE edition
    # (new Postgres 16 instances default to ENTERPRISE_PLUS).
    edition                     = "ENTERPRISE"
    tier                        = var.tier
    availability_type           = var.high_availability ? "REGIONAL" : "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_size_gb
    disk_autoresize             = true
    disk_autoresize_limit       = var.disk_autoresize_limit_gb
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled       = false
      private_network    = var.private_network
      allocated_ip_range = var.allocated_ip_range
      # Every connection must use TLS; the services connect over the private
      # IP with sslmode=require (see local.database_url).
      ssl_mode = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.backup_start_time
      location                       = var.region
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.transaction_log_retention_days

      backup_retention_settings {
        retained_backups = var.retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.maintenance_window.day
      hour         = var.maintenance_window.hour
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      query_string_length     = 1024
      record_application_tags = false
      record_client_address   = false
    }

    # Logging flags: the CIS PostgreSQL benchmark as checkov encodes it
    # (CKV_GCP_51..57, 108..111, CKV2_GCP_13..17) where it is sensible for
    # this service; log_duration is skipped above. Slow statements are
    # found with Query Insights rather than log_min_duration_statement,
    # which would write statement text (and parameters) to the logs.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "warning"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_executor_stats"
      value = "off"
    }
    database_flags {
      name  = "log_parser_stats"
      value = "off"
    }
    database_flags {
      name  = "log_planner_stats"
      value = "off"
    }
    database_flags {
      name  = "log_statement_stats"
      value = "off"
    }
    # pgAudit for DDL and role changes only (low volume). The extension is
    # created by a migration or an operator (CREATE EXTENSION pgaudit); the
    # flag only makes it available.
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
    # The tier's default max_connections is small (25 on db-f1-micro, 100
    # on 3.75 GB) for Cloud Run fleets that each hold a pool.
    dynamic "database_flags" {
      for_each = var.max_connections == null ? [] : [var.max_connections]
      content {
        name  = "max_connections"
        value = tostring(database_flags.value)
      }
    }
  }
}

resource "google_sql_database" "this" {
  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = var.database_name
}

# Alphanumeric only so the password can be placed in a URL without escaping.
resource "random_password" "user" {
  length  = 40
  special = false
}

resource "google_sql_user" "api" {
  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = var.user_name
  password = random_password.user.result

  # The user owns the schema objects the migrations create; removing it from
  # Terraform must not drop it while the database exists.
  deletion_policy = "ABANDON"
}

locals {
  #checkov:skip=CKV_SECRET_4:a format template, not a credential; the password comes from random_password and is stored only in Secret Manager
  url_format = "postgres://%s:%s@%s:5432/%s?sslmode=require"
  database_url = format(
    local.url_format,
    google_sql_user.api.name,
    random_password.user.result,
    google_sql_database_instance.this.private_ip_address,
    google_sql_database.this.name,
  )
}

resource "google_secret_manager_secret_version" "password" {
  secret      = var.password_secret
  secret_data = random_password.user.result
}

resource "google_secret_manager_secret_version" "database_url" {
  secret      = var.database_url_secret
  secret_data = local.database_url
}

# A read replica for the API's public reads (DATABASE_READ_URL), where asked.
# The API measures its lag and reads from the primary while it lags past
# READ_REPLICA_MAX_LAG or is away, so it needs no high availability of its own.
resource "google_sql_database_instance" "replica" {
  #checkov:skip=CKV_GCP_6:as the primary: ssl_mode ENCRYPTED_ONLY, TLS on every connection over the private IP, no client certificates.
  #checkov:skip=CKV_GCP_79:as the primary: Postgres 16 is what the application is built and tested against.
  #checkov:skip=CKV2_GCP_13:as the primary: log_duration would log every statement.
  #checkov:skip=CKV_GCP_14:Cloud SQL read replicas cannot have backups; the primary's backups and point-in-time recovery cover the data.
  count = var.read_replica ? 1 : 0

  project              = var.project_id
  name                 = "${var.instance_name}-replica"
  region               = var.region
  database_version     = var.database_version
  master_instance_name = google_sql_database_instance.this.name
  deletion_protection  = false

  replica_configuration {
    failover_target = false
  }

  settings {
    edition                     = "ENTERPRISE"
    tier                        = var.tier
    availability_type           = "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_size_gb
    disk_autoresize             = true
    disk_autoresize_limit       = var.disk_autoresize_limit_gb
    deletion_protection_enabled = false
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled       = false
      private_network    = var.private_network
      allocated_ip_range = var.allocated_ip_range
      ssl_mode           = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled = false
    }

    insights_config {
      query_insights_enabled  = true
      query_string_length     = 1024
      record_application_tags = false
      record_client_address   = false
    }

    # The primary's flags (logging, max_connections), one list for both.
    dynamic "database_flags" {
      for_each = google_sql_database_instance.this.settings[0].database_flags
      content {
        name  = database_flags.value.name
        value = database_flags.value.value
      }
    }
  }
}

# The same user and database, through the replica's private IP.
resource "google_secret_manager_secret_version" "database_read_url" {
  count = var.read_replica ? 1 : 0

  secret = var.database_read_url_secret
  secret_data = format(
    local.url_format,
    google_sql_user.api.name,
    random_password.user.result,
    google_sql_database_instance.replica[0].private_ip_address,
    google_sql_database.this.name,
  )

  lifecycle {
    precondition {
      condition     = var.database_read_url_secret != null
      error_message = "read_replica needs database_read_url_secret, where its URL is written."
    }
  }
}
