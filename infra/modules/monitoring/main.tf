# Alert policies (seeds 000/003), log-based metrics for what only the logs
# know (dead deliveries, delivery outcomes, outbox backlog, connection
# failures), an email notification channel and a dashboard.

locals {
  service_names  = values(var.services)
  service_filter = join(" OR ", [for s in local.service_names : "\"${s}\""])
  run_logs       = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${local.service_filter})"
  worker_logs    = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${var.worker_service_name}\""

  run_metric   = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com"
  sql_filter   = "resource.type = \"cloudsql_database\" AND resource.labels.database_id = \"${var.sql_database_id}\""
  redis_filter = "resource.type = \"redis_instance\" AND resource.labels.instance_id = \"${var.redis_instance_id}\""

  user_metric = "metric.type = \"logging.googleapis.com/user"

  channels = [google_monitoring_notification_channel.email.id]
  title    = "agent-registry ${var.environment}"
}

resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "${local.title} on-call email"
  type         = "email"

  labels = {
    email_address = var.notification_email
  }
}

# ---------------------------------------------------------------------------
# Log-based metrics. The services log one JSON object per line to stdout
# (Cloud Logging parses it into jsonPayload, fields at the top level).

resource "google_logging_metric" "deliveries_dead" {
  project     = var.project_id
  name        = "webhook_deliveries_dead"
  description = "Webhook deliveries given up after the last attempt (worker logs message \"delivery dead\")."
  filter      = "${local.worker_logs} AND jsonPayload.message=\"delivery dead\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Dead webhook deliveries"
  }
}

resource "google_logging_metric" "delivery_outcomes" {
  project     = var.project_id
  name        = "webhook_delivery_outcomes"
  description = "Webhook delivery attempts by outcome (jsonPayload.outcome logged by the worker)."
  filter      = "${local.worker_logs} AND jsonPayload.outcome:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Webhook delivery outcomes"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "delivered, retry, dead, …"
    }
  }

  label_extractors = {
    outcome = "EXTRACT(jsonPayload.outcome)"
  }
}

resource "google_logging_metric" "outbox_backlog_age" {
  project         = var.project_id
  name            = "outbox_backlog_age_seconds"
  description     = "Age of the oldest unpublished outbox row, as logged periodically (jsonPayload.outbox_backlog_age_seconds)."
  filter          = "${local.run_logs} AND jsonPayload.outbox_backlog_age_seconds:*"
  value_extractor = "EXTRACT(jsonPayload.outbox_backlog_age_seconds)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Outbox backlog age"
  }

  # 0.5 s .. ~ 9 h
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 1.7
      scale              = 0.5
    }
  }
}

resource "google_logging_metric" "database_connection_failures" {
  project     = var.project_id
  name        = "database_connection_failures"
  description = "Requests or readiness checks that could not reach Postgres (\"database unavailable\", readiness check failures for store=postgres)."
  filter      = "${local.run_logs} AND (jsonPayload.message=\"database unavailable\" OR (jsonPayload.message=~\"^readiness check\" AND jsonPayload.store=\"postgres\"))"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Database connection failures"
  }
}

resource "google_logging_metric" "redis_connection_failures" {
  project     = var.project_id
  name        = "redis_connection_failures"
  description = "Requests or readiness checks that could not reach Redis (\"redis unavailable\", readiness check failures for store=redis)."
  filter      = "${local.run_logs} AND (jsonPayload.message=\"redis unavailable\" OR (jsonPayload.message=~\"^readiness check\" AND jsonPayload.store=\"redis\"))"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Redis connection failures"
  }
}

# ---------------------------------------------------------------------------
# Cloud Run: per service 5xx ratio, p95 latency, CPU.

resource "google_monitoring_alert_policy" "error_rate" {
  for_each = var.services

  project               = var.project_id
  display_name          = "${local.title}: ${each.value} 5xx rate > ${var.error_rate_threshold * 100}%"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels

  conditions {
    display_name = "5xx / all requests > ${var.error_rate_threshold * 100}% for 5 min"

    condition_threshold {
      filter             = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${each.value}\" AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${each.value}\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }

      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.error_rate_threshold * 100}% of requests to `${each.value}` failed with 5xx for 5 minutes. Check the service logs (severity>=ERROR, message \"request failed\") and the database/Redis alerts."
  }
}

resource "google_monitoring_alert_policy" "latency" {
  for_each = var.services

  project               = var.project_id
  display_name          = "${local.title}: ${each.value} p95 latency > ${var.latency_p95_threshold_ms} ms"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels

  conditions {
    display_name = "p95 request latency > ${var.latency_p95_threshold_ms} ms for 5 min"

    condition_threshold {
      filter          = "${local.run_metric}/request_latencies\" AND resource.labels.service_name = \"${each.value}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.latency_p95_threshold_ms
      duration        = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.labels.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "p95 latency of `${each.value}` has been above ${var.latency_p95_threshold_ms} ms for 5 minutes. Look at cold starts (instance count), Cloud SQL CPU and Query Insights."
  }
}

resource "google_monitoring_alert_policy" "cpu" {
  for_each = var.services

  project               = var.project_id
  display_name          = "${local.title}: ${each.value} CPU > ${var.cpu_threshold * 100}%"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels

  conditions {
    display_name = "container CPU utilisation (p95 over instances) > ${var.cpu_threshold * 100}% for 10 min"

    condition_threshold {
      filter          = "${local.run_metric}/container/cpu/utilizations\" AND resource.labels.service_name = \"${each.value}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.cpu_threshold
      duration        = "600s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.labels.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "`${each.value}` instances have used more than ${var.cpu_threshold * 100}% CPU for 10 minutes: raise max instances or CPU, or lower concurrency."
  }
}

# ---------------------------------------------------------------------------
# Cloud SQL: down, no data, connection failures seen by the services, CPU.

resource "google_monitoring_alert_policy" "database" {
  project               = var.project_id
  display_name          = "${local.title}: Cloud SQL down or unreachable"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels

  conditions {
    display_name = "database/up < 1 for 5 min"

    condition_threshold {
      filter          = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/up\""
      comparison      = "COMPARISON_LT"
      threshold_value = 1
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MIN"
      }

      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "database/up missing for 10 min"

    condition_absent {
      filter   = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/up\""
      duration = "600s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MIN"
      }

      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "services failed to connect to Postgres > ${var.connection_failure_threshold} times in 5 min"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.database_connection_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.connection_failure_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Cloud SQL `${var.sql_database_id}` is down, not reporting, or the services cannot connect to it (log metric `database_connection_failures`). Check the instance state, maintenance and failover events, and the connection pool size (DATABASE_MAX_CONNECTIONS x instances vs max_connections)."
  }
}

resource "google_monitoring_alert_policy" "database_cpu" {
  project               = var.project_id
  display_name          = "${local.title}: Cloud SQL CPU > ${var.cpu_threshold * 100}%"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels

  conditions {
    display_name = "Cloud SQL CPU utilisation > ${var.cpu_threshold * 100}% for 10 min"

    condition_threshold {
      filter          = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.cpu_threshold
      duration        = "600s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Cloud SQL CPU has been above ${var.cpu_threshold * 100}% for 10 minutes. Check Query Insights for the top queries; consider a larger tier."
  }
}

# ---------------------------------------------------------------------------
# Redis: connections rejected by the instance, or failures seen by the services.

resource "google_monitoring_alert_policy" "redis" {
  project               = var.project_id
  display_name          = "${local.title}: Redis connection failures"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels

  conditions {
    display_name = "Memorystore rejected connections in 5 min"

    condition_threshold {
      filter          = "${local.redis_filter} AND metric.type = \"redis.googleapis.com/stats/reject_connections_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "services failed to connect to Redis > ${var.connection_failure_threshold} times in 5 min"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.redis_connection_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.connection_failure_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The services cannot reach Memorystore `${var.redis_instance_id}`, or it rejects connections (maxclients). Rate limiting and replay protection depend on it. Check the instance state, maintenance, and REDIS_POOL_SIZE x instances."
  }
}

# ---------------------------------------------------------------------------
# Webhooks and outbox.

resource "google_monitoring_alert_policy" "dead_deliveries" {
  project               = var.project_id
  display_name          = "${local.title}: webhook deliveries marked dead"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels

  conditions {
    display_name = "\"delivery dead\" logged by ${var.worker_service_name}"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.deliveries_dead.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "At least one webhook delivery exhausted its Cloud Tasks attempts and was marked dead (published to `webhook-dead-letter`). If many endpoints fail at once, suspect the worker or its egress rather than the receivers."
  }
}

resource "google_monitoring_alert_policy" "outbox_backlog" {
  project               = var.project_id
  display_name          = "${local.title}: outbox backlog older than ${var.outbox_backlog_age_threshold_seconds} s"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels

  conditions {
    display_name = "p95 outbox backlog age > ${var.outbox_backlog_age_threshold_seconds} s for 10 min"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.outbox_backlog_age.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.outbox_backlog_age_threshold_seconds
      duration        = "600s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Events wait in the outbox longer than ${var.outbox_backlog_age_threshold_seconds} s: the relay is stuck or Pub/Sub / Cloud Tasks refuse requests."
  }
}
