# agent-registry, one environment. Everything lives in modules/platform; this
# root only holds the provider and the state prefix (versions.tf) and the
# sizes (terraform.tfvars). environments/staging and environments/production
# differ in those two files only.

module "platform" {
  source = "../../modules/platform"

  project_id         = var.project_id
  region             = var.region
  environment        = var.environment
  notification_email = var.notification_email
  api_image          = var.api_image
  worker_image       = var.worker_image
  subnet_cidr        = var.subnet_cidr

  database = var.database
  redis    = var.redis
  api      = var.api
  worker   = var.worker

  services_deletion_protection = var.services_deletion_protection
  rust_log                     = var.rust_log
  delivery_queues              = var.delivery_queues
  tasks_logging_sampling_ratio = var.tasks_logging_sampling_ratio
  trace_sample_ratio           = var.trace_sample_ratio
  cors_allowed_origins         = var.cors_allowed_origins
}
