output "api_email" {
  description = "Email of the API service account."
  value       = google_service_account.this["api"].email
}

output "worker_email" {
  description = "Email of the webhook worker service account."
  value       = google_service_account.this["worker"].email
}

output "tasks_invoker_email" {
  description = "Email of the Cloud Tasks OIDC service account (the worker's only invoker)."
  value       = google_service_account.this["tasks_invoker"].email
}

output "deployer_email" {
  description = "Email of the Cloud Build / deploy service account."
  value       = google_service_account.this["deployer"].email
}

output "emails" {
  description = "All service account emails by role (api, worker, tasks_invoker, deployer)."
  value       = { for k, sa in google_service_account.this : k => sa.email }
}
