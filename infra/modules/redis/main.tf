# Memorystore for Redis: rate-limit buckets and signature nonces. AUTH and
# in-transit encryption on, reachable only through private service access.

resource "google_redis_instance" "this" {
  project        = var.project_id
  region         = var.region
  name           = var.name
  tier           = var.tier
  memory_size_gb = var.memory_size_gb
  redis_version  = var.redis_version
  labels         = var.labels

  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  authorized_network = var.authorized_network
  reserved_ip_range  = var.reserved_ip_range

  # Read replicas (STANDARD_HA only, 5 GB and up) add failover targets and a
  # read endpoint; without them STANDARD_HA keeps one standby replica.
  read_replicas_mode = var.replica_count == null ? null : "READ_REPLICAS_ENABLED"
  replica_count      = var.replica_count

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # Nonces must never be evicted: an evicted nonce would let its request be
  # replayed. When memory is full, writes fail ("OOM command not allowed"),
  # and the API then refuses signed requests with 503 (fail closed) instead
  # of forgetting what it has seen. Memorystore's default is volatile-lru,
  # which evicts keys with a TTL: every nonce has one.
  redis_configs = {
    "maxmemory-policy" = "noeviction"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = var.maintenance_day
      start_time {
        hours   = var.maintenance_hour
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }
}

locals {
  # TLS (rediss), AUTH string as the password, database 0. With
  # SERVER_AUTHENTICATION the instance listens on 6378.
  redis_url = format(
    "rediss://:%s@%s:%d/0",
    google_redis_instance.this.auth_string,
    google_redis_instance.this.host,
    google_redis_instance.this.port,
  )

  ca_pem = join("\n", [for c in google_redis_instance.this.server_ca_certs : c.cert])
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = var.redis_url_secret
  secret_data = local.redis_url
}

resource "google_secret_manager_secret_version" "ca_cert" {
  secret      = var.ca_cert_secret
  secret_data = local.ca_pem
}
