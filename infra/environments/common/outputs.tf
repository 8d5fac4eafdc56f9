# What operators and the deploy tool read (`terraform output -raw NAME`);
# `terraform output -json platform` has every platform output, including the
# service names, queue name, Cloud SQL private IP, Redis port and dashboard id.

output "api_url" {
  description = "Public URL of the API."
  value       = module.platform.api_url
}

output "worker_url" {
  description = "URL of the webhook worker (internal ingress; the Cloud Tasks OIDC audience)."
  value       = module.platform.worker_url
}

output "migrate_job_name" {
  description = "Cloud Run job that runs the migrations."
  value       = module.platform.migrate_job_name
}

output "queue_id" {
  description = "The first Cloud Tasks delivery queue's id (projects/P/locations/R/queues/Q): CLOUD_TASKS_QUEUE."
  value       = module.platform.queue_id
}

output "topic_names" {
  description = "Pub/Sub topic names."
  value       = module.platform.topic_names
}

output "subscription_ids" {
  description = "Pub/Sub subscription ids (projects/P/subscriptions/S) by name, e.g. the ordered registry-events-audit for consumers of the events."
  value       = module.platform.subscription_ids
}

output "cloud_sql_connection_name" {
  description = "Cloud SQL connection name (PROJECT:REGION:INSTANCE)."
  value       = module.platform.cloud_sql_connection_name
}

output "redis_host" {
  description = "Private IP of Memorystore."
  value       = module.platform.redis_host
}

output "artifact_registry_url" {
  description = "Docker repository URL prefix (append /api:TAG, /webhook-worker:TAG)."
  value       = module.platform.artifact_registry_url
}

output "service_account_emails" {
  description = "Service account emails: api, worker, tasks_invoker, deployer."
  value       = module.platform.service_account_emails
}

output "platform" {
  description = "Every output of modules/platform."
  value       = module.platform
}
