output "name" {
  description = "Queue short name."
  value       = google_cloud_tasks_queue.this.name
}

output "id" {
  description = "Queue resource id (projects/P/locations/R/queues/Q), the parent for CreateTask."
  value       = google_cloud_tasks_queue.this.id
}
