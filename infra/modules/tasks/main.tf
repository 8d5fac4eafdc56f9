# Cloud Tasks queue for webhook delivery (seed 001): the API creates each
# delivery's first task and the worker each later attempt's (it owns the
# retry schedule, WEBHOOK_RETRY_SCHEDULE, and answers 2xx whatever the
# receiver did), all HTTP tasks to the worker with an OIDC token for the
# tasks-invoker service account.
#
# retry_config is therefore the crash net only: it retries a push the worker
# failed to answer with 2xx (worker crashed or killed, Postgres or Cloud
# Tasks unreachable from it), never a receiver's failure. The worker never
# answers 429/503, which would slow the whole queue.

resource "google_cloud_tasks_queue" "this" {
  project  = var.project_id
  location = var.region
  name     = var.name

  rate_limits {
    max_dispatches_per_second = var.max_dispatches_per_second
    max_concurrent_dispatches = var.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = var.max_attempts
    min_backoff        = "${var.min_backoff_seconds}s"
    max_backoff        = "${var.max_backoff_seconds}s"
    max_doublings      = var.max_doublings
    max_retry_duration = "0s"
  }

  stackdriver_logging_config {
    sampling_ratio = var.logging_sampling_ratio
  }
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = var.enqueuers

  project  = var.project_id
  location = google_cloud_tasks_queue.this.location
  name     = google_cloud_tasks_queue.this.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${each.value}"
}

# GetTask, for the relay's sweep: a delivery long overdue is queued again
# only once Cloud Tasks says its task no longer exists.
resource "google_cloud_tasks_queue_iam_member" "viewer" {
  for_each = var.viewers

  project  = var.project_id
  location = google_cloud_tasks_queue.this.location
  name     = google_cloud_tasks_queue.this.name
  role     = "roles/cloudtasks.viewer"
  member   = "serviceAccount:${each.value}"
}
