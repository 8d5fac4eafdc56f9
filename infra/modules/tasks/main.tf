# Cloud Tasks queues for webhook delivery: the API creates each
# delivery's first task and the worker each later attempt's (it owns the
# retry schedule, WEBHOOK_RETRY_SCHEDULE, and answers 2xx whatever the
# receiver did), all HTTP tasks to the worker with an OIDC token for the
# tasks-invoker service account.
#
# retry_config is therefore the crash net only: it retries a push the worker
# failed to answer with 2xx (worker crashed or killed, Postgres or Cloud
# Tasks unreachable from it), never a receiver's failure. The worker never
# answers 429/503, which would slow the whole queue.
#
# One queue dispatches at most 500 tasks/s, so there are queue_count queues
# alike: name, then name-1, name-2, … (the services' CLOUD_TASKS_QUEUE is the
# first, CLOUD_TASKS_QUEUE_COUNT their number). Each delivery's tasks keep to
# the queue its id picks.

locals {
  queue_names = [for index in range(var.queue_count) : index == 0 ? var.name : "${var.name}-${index}"]

  # The first queue's grants keep their keys from when there was one queue,
  # so adding queues changes no existing binding.
  grant_keys = [for index, queue in local.queue_names : index == 0 ? "" : "/${queue}"]
  enqueuer_grants = merge([
    for index, suffix in local.grant_keys : { for label, email in var.enqueuers : "${label}${suffix}" => { queue = index, email = email } }
  ]...)
  viewer_grants = merge([
    for index, suffix in local.grant_keys : { for label, email in var.viewers : "${label}${suffix}" => { queue = index, email = email } }
  ]...)
}

# The queue was one resource before there were several.
moved {
  from = google_cloud_tasks_queue.this
  to   = google_cloud_tasks_queue.this[0]
}

resource "google_cloud_tasks_queue" "this" {
  count = var.queue_count

  project  = var.project_id
  location = var.region
  name     = local.queue_names[count.index]

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
  for_each = local.enqueuer_grants

  project  = var.project_id
  location = google_cloud_tasks_queue.this[each.value.queue].location
  name     = google_cloud_tasks_queue.this[each.value.queue].name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${each.value.email}"
}

# GetTask, for the relay's sweep: a delivery long overdue is queued again
# only once Cloud Tasks says its task no longer exists.
resource "google_cloud_tasks_queue_iam_member" "viewer" {
  for_each = local.viewer_grants

  project  = var.project_id
  location = google_cloud_tasks_queue.this[each.value.queue].location
  name     = google_cloud_tasks_queue.this[each.value.queue].name
  role     = "roles/cloudtasks.viewer"
  member   = "serviceAccount:${each.value.email}"
}
