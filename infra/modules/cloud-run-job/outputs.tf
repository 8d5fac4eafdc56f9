output "name" {
  description = "Job name (gcloud run jobs execute NAME --region REGION --wait)."
  value       = google_cloud_run_v2_job.this.name
}

output "id" {
  description = "Job resource id."
  value       = google_cloud_run_v2_job.this.id
}
