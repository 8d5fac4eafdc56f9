# Production sizes. api_image and worker_image are passed by the
# deploy tool: -var "api_image=…@sha256:…" -var "worker_image=…@sha256:…".

project_id         = "agent-registry-production"
region             = "us-west1"
environment        = "production"
notification_email = "oncall@example.com"

# Direct VPC egress: ~2 IPs per instance, 100 api + 20 worker at most.
subnet_cidr = "10.20.0.0/22"

database = {
  tier                = "db-custom-2-3840"
  disk_size_gb        = 100
  high_availability   = true
  deletion_protection = true
  retained_backups    = 14
  # 100 x 4 (api: 3 + 1 for discovery) + 20 x 2 (worker) + 2 (migrate) + admin
  max_connections = 500
  # Discovery and the other public reads run there (the API falls back to
  # the primary while it lags past READ_REPLICA_MAX_LAG or is away).
  read_replica = true
}

redis = {
  tier           = "STANDARD_HA"
  memory_size_gb = 5
  replica_count  = 2
}

api = {
  cpu             = "4"
  memory          = "2Gi"
  min_instances   = 2
  max_instances   = 100
  concurrency     = 200
  timeout_seconds = 300
  db_pool_size    = 4
  # 4 CPUs need 2 GiB on Cloud Run, and the API peaked at ~82 MB with a
  # 32 MiB cache in the soak: much of the rest can hold hot pages.
  page_cache_mib = 512
}

worker = {
  cpu             = "1"
  memory          = "1Gi"
  min_instances   = 1
  max_instances   = 20
  concurrency     = 80
  timeout_seconds = 60
  db_pool_size    = 2
}

services_deletion_protection = true
rust_log                     = "info"
tasks_logging_sampling_ratio = 0.1

# Deliveries: 4 queues × 500 dispatches/s = 2,000/s at most; 4 × 400 tasks in
# flight = the worker's 20 instances × 80 concurrent requests.
delivery_queues = {
  count                     = 4
  max_dispatches_per_second = 500
  max_concurrent_dispatches = 400
}

# Share of new traces sampled (0.1 in production, 1.0 in staging).
trace_sample_ratio = 0.1
