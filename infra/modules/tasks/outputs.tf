output "name" {
  description = "The first queue's short name."
  value       = google_cloud_tasks_queue.this[0].name
}

output "id" {
  description = "The first queue's resource id (projects/P/locations/R/queues/Q): the services' CLOUD_TASKS_QUEUE."
  value       = google_cloud_tasks_queue.this[0].id
}

output "ids" {
  description = "Every queue's resource id, in order (the first, then name-1, name-2, …)."
  value       = google_cloud_tasks_queue.this[*].id
}

output "queue_count" {
  description = "Number of queues: the services' CLOUD_TASKS_QUEUE_COUNT."
  value       = var.queue_count
}
