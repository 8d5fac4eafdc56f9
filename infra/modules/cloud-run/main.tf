# One Cloud Run service (used for both the API and the webhook worker).
# Direct VPC egress to private ranges reaches Cloud SQL and Memorystore on
# their private IPs; everything else (webhook deliveries) leaves directly.

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  location            = var.region
  name                = var.name
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = var.service_account_email
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    labels                           = var.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    vpc_access {
      egress = var.vpc_egress
      network_interfaces {
        network    = var.network
        subnetwork = var.subnetwork
      }
    }

    dynamic "volumes" {
      for_each = length(var.cloud_sql_instances) > 0 ? [1] : []
      content {
        name = "cloudsql"
        cloud_sql_instance {
          instances = var.cloud_sql_instances
        }
      }
    }

    # The collector sidecar the app exports traces to (OTLP on localhost:4318).
    containers {
      name  = "otel-collector"
      image = var.otel_collector_image
      args  = ["--config=env:OTEL_COLLECTOR_CONFIG"]

      env {
        name  = "OTEL_COLLECTOR_CONFIG"
        value = file("${path.module}/otel-collector.yaml")
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "256Mi"
        }
        cpu_idle = var.cpu_idle
      }

      startup_probe {
        timeout_seconds   = 2
        period_seconds    = 2
        failure_threshold = 15
        http_get {
          path = "/"
          port = 13133
        }
      }
    }

    containers {
      name       = "app"
      image      = var.image
      args       = var.args
      depends_on = ["otel-collector"]

      ports {
        name           = "http1"
        container_port = var.container_port
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = var.cpu_idle
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = var.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = length(var.cloud_sql_instances) > 0 ? [1] : []
        content {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }

      # Traffic is sent only once /readyz answers 200 (Postgres and Redis
      # reachable); each check inside /readyz times out after 1 s. Up to
      # 2 minutes for a cold start.
      startup_probe {
        initial_delay_seconds = 0
        timeout_seconds       = 3
        period_seconds        = 5
        failure_threshold     = 24
        http_get {
          path = var.startup_probe_path
          port = var.container_port
        }
      }

      # Restart only when the process itself is stuck; /healthz does not
      # touch the data stores, so an outage there does not restart the fleet.
      liveness_probe {
        initial_delay_seconds = 0
        timeout_seconds       = 2
        period_seconds        = 15
        failure_threshold     = 3
        http_get {
          path = var.liveness_probe_path
          port = var.container_port
        }
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  lifecycle {
    # Set by gcloud when a revision is deployed or rolled back outside Terraform.
    ignore_changes = [client, client_version]

    precondition {
      condition     = var.min_instances <= var.max_instances
      error_message = "min_instances must not exceed max_instances."
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  #checkov:skip=CKV_GCP_102:Only instantiated with public = true for the public REST API, whose requests are authenticated per request by agent signatures; the worker is never public.
  count = var.public ? 1 : 0

  project  = var.project_id
  location = google_cloud_run_v2_service.this.location
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"

  lifecycle {
    precondition {
      condition     = var.ingress == "INGRESS_TRAFFIC_ALL"
      error_message = "public = true needs ingress INGRESS_TRAFFIC_ALL."
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers

  project  = var.project_id
  location = google_cloud_run_v2_service.this.location
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
