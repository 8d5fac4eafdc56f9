output "name" {
  description = "Service name."
  value       = google_cloud_run_v2_service.this.name
}

output "url" {
  description = "Service URL (https://…run.app), also the OIDC audience for Cloud Tasks."
  value       = google_cloud_run_v2_service.this.uri
}

output "id" {
  description = "Service resource id."
  value       = google_cloud_run_v2_service.this.id
}

output "latest_ready_revision" {
  description = "Latest revision that became ready (for rollbacks)."
  value       = google_cloud_run_v2_service.this.latest_ready_revision
}
