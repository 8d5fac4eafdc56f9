output "api_url" {
  description = "Public URL of the API."
  value       = module.api.url
}

output "api_service_name" {
  description = "Cloud Run service name of the API."
  value       = module.api.name
}

output "worker_url" {
  description = "URL of the webhook worker (internal ingress; the Cloud Tasks OIDC audience)."
  value       = module.worker.url
}

output "worker_service_name" {
  description = "Cloud Run service name of the webhook worker."
  value       = module.worker.name
}

output "migrate_job_name" {
  description = "Cloud Run job that runs the migrations."
  value       = module.migrate.name
}

output "queue_name" {
  description = "The first Cloud Tasks delivery queue's name (the others end -1, -2, …)."
  value       = module.tasks.name
}

output "queue_id" {
  description = "The first Cloud Tasks delivery queue's id (projects/P/locations/R/queues/Q): CLOUD_TASKS_QUEUE."
  value       = module.tasks.id
}

output "topic_names" {
  description = "Pub/Sub topic names."
  value       = module.pubsub.topic_names
}

output "subscription_ids" {
  description = "Pub/Sub subscription ids (projects/P/subscriptions/S) by name, e.g. the ordered registry-events-audit for consumers of the events."
  value       = module.pubsub.subscription_ids
}

output "cloud_sql_connection_name" {
  description = "Cloud SQL connection name (PROJECT:REGION:INSTANCE)."
  value       = module.database.instance_connection_name
}

output "cloud_sql_private_ip" {
  description = "Private IP of Cloud SQL."
  value       = module.database.private_ip_address
}

output "redis_host" {
  description = "Private IP of Memorystore."
  value       = module.redis.host
}

output "redis_port" {
  description = "TLS port of Memorystore."
  value       = module.redis.port
}

output "artifact_registry_url" {
  description = "Docker repository URL prefix (append /api:TAG, /webhook-worker:TAG)."
  value       = module.artifact_registry.repository_url
}

output "service_account_emails" {
  description = "Service account emails: api, worker, tasks_invoker, deployer."
  value       = module.service_accounts.emails
}

output "dashboard_id" {
  description = "Monitoring dashboard id."
  value       = module.monitoring.dashboard_id
}
