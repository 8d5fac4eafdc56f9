output "repository_id" {
  description = "Repository name."
  value       = google_artifact_registry_repository.this.repository_id
}

output "repository_url" {
  description = "Docker URL prefix: REGION-docker.pkg.dev/PROJECT/REPOSITORY (append /api:TAG or /webhook-worker:TAG)."
  value       = "${google_artifact_registry_repository.this.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}
