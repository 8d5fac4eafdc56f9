# Staging sizes. api_image and worker_image are passed by the
# deploy tool: -var "api_image=…@sha256:…" -var "worker_image=…@sha256:…".

project_id         = "agent-registry-staging"
region             = "us-west1"
environment        = "staging"
notification_email = "oncall+staging@example.com"

subnet_cidr = "10.10.0.0/24"

database = {
  tier                = "db-f1-micro"
  disk_size_gb        = 10
  high_availability   = false
  deletion_protection = false
  retained_backups    = 7
  # f1-micro defaults to 25; 10 x 3 (api) + 5 x 2 (worker) + 2 (migrate) + admin
  max_connections = 50
}

redis = {
  tier           = "BASIC"
  memory_size_gb = 1
}

# One API instance always runs: its relay and publisher move the outbox
# (webhooks, events, dead letters) even when no request comes in.
api = {
  cpu             = "1"
  memory          = "512Mi"
  min_instances   = 1
  max_instances   = 10
  concurrency     = 80
  timeout_seconds = 300
  db_pool_size    = 3
}

worker = {
  cpu             = "1"
  memory          = "512Mi"
  min_instances   = 0
  max_instances   = 5
  concurrency     = 80
  timeout_seconds = 60
  db_pool_size    = 2
}

# Staging is disposable.
services_deletion_protection = false
rust_log                     = "info"
tasks_logging_sampling_ratio = 1

# One delivery queue, 10 dispatches/s: enough for staging's traffic.
delivery_queues = {
  count                     = 1
  max_dispatches_per_second = 10
  max_concurrent_dispatches = 100
}

# Share of new traces sampled (0.1 in production, 1.0 in staging).
trace_sample_ratio = 1
