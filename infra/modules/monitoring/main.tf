# Alert policies, log-based metrics for what only the logs
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

resource "google_logging_metric" "endpoints_disabled" {
  project     = var.project_id
  name        = "agent_endpoints_disabled"
  description = "Agent endpoints disabled after a 410 or failing too long (worker logs message \"endpoint disabled\", field reason)."
  filter      = "${local.worker_logs} AND jsonPayload.message=\"endpoint disabled\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Agent endpoints disabled"
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

resource "google_logging_metric" "read_replica_lag" {
  project         = var.project_id
  name            = "read_replica_lag_seconds"
  description     = "How far the read replica is behind the primary, as each API instance logs it every minute and on a change of status (jsonPayload.read_replica_lag_seconds; 0 while it has replayed all the primary wrote)."
  filter          = "${local.run_logs} AND jsonPayload.read_replica_lag_seconds:*"
  value_extractor = "EXTRACT(jsonPayload.read_replica_lag_seconds)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Read replica lag"
  }

  # 0.01 s .. ~ 1 h
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 1.5
      scale              = 0.01
    }
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

resource "google_logging_metric" "request_latency" {
  project         = var.project_id
  name            = "request_latency_by_route"
  description     = "Request latency by route template and status, from the services' request log lines (httpRequest)."
  filter          = "${local.run_logs} AND jsonPayload.message=\"request finished\""
  value_extractor = "EXTRACT(httpRequest.latency)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Request latency by route"
    labels {
      key         = "route"
      value_type  = "STRING"
      description = "Route template, e.g. /v1/agents/{id}"
    }
    labels {
      key         = "status"
      value_type  = "STRING"
      description = "HTTP status"
    }
  }
  label_extractors = {
    route  = "EXTRACT(jsonPayload.route)"
    status = "EXTRACT(httpRequest.status)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 2
      scale              = 0.0005
    }
  }
}

resource "google_logging_metric" "rate_limited" {
  project     = var.project_id
  name        = "rate_limit_rejections"
  description = "Requests refused with 429, by bucket class (the API logs \"rate limited\" with jsonPayload.class)."
  filter      = "${local.run_logs} AND jsonPayload.message=\"rate limited\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Rate-limit rejections"
    labels {
      key         = "class"
      value_type  = "STRING"
      description = "discovery, read or write"
    }
  }
  label_extractors = {
    class = "EXTRACT(jsonPayload.class)"
  }
}

# ---------------------------------------------------------------------------
# Alert policies, one per entry of local.alerts (keys are the keys of the
# alert_policy_ids output). A condition is a threshold unless absent = true;
# attributes left out take the values in local.condition_defaults.

locals {
  condition_defaults = {
    absent                   = false
    comparison               = "COMPARISON_GT"
    threshold_value          = null
    alignment_period         = "60s"
    per_series_aligner       = "ALIGN_DELTA"
    cross_series_reducer     = null
    group_by_fields          = null
    denominator_filter       = null
    denominator_aggregations = false
  }

  # Cloud Run: per service 5xx ratio, p95 latency, CPU.
  service_alerts = merge([for label, service in var.services : {
    "error_rate_${label}" = {
      display_name = "${local.title}: ${service} 5xx rate > ${var.error_rate_threshold * 100}%"
      severity     = "CRITICAL"
      conditions = [{
        display_name             = "5xx / all requests > ${var.error_rate_threshold * 100}% for 5 min"
        filter                   = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${service}\" AND metric.labels.response_code_class = \"5xx\""
        denominator_filter       = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${service}\""
        denominator_aggregations = true
        threshold_value          = var.error_rate_threshold
        duration                 = "300s"
        per_series_aligner       = "ALIGN_RATE"
        cross_series_reducer     = "REDUCE_SUM"
        group_by_fields          = ["resource.labels.service_name"]
      }]
      documentation = "More than ${var.error_rate_threshold * 100}% of requests to `${service}` failed with 5xx for 5 minutes. Check the service logs (severity>=ERROR, message \"request failed\") and the database/Redis alerts."
    }
    "latency_${label}" = {
      display_name = "${local.title}: ${service} p95 latency > ${var.latency_p95_threshold_ms} ms"
      severity     = "WARNING"
      conditions = [{
        display_name         = "p95 request latency > ${var.latency_p95_threshold_ms} ms for 5 min"
        filter               = "${local.run_metric}/request_latencies\" AND resource.labels.service_name = \"${service}\""
        threshold_value      = var.latency_p95_threshold_ms
        duration             = "300s"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.labels.service_name"]
      }]
      documentation = "p95 latency of `${service}` has been above ${var.latency_p95_threshold_ms} ms for 5 minutes. Look at cold starts (instance count), Cloud SQL CPU and Query Insights."
    }
    "cpu_${label}" = {
      display_name = "${local.title}: ${service} CPU > ${var.cpu_threshold * 100}%"
      severity     = "WARNING"
      conditions = [{
        display_name         = "container CPU utilisation (p95 over instances) > ${var.cpu_threshold * 100}% for 10 min"
        filter               = "${local.run_metric}/container/cpu/utilizations\" AND resource.labels.service_name = \"${service}\""
        threshold_value      = var.cpu_threshold
        duration             = "600s"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.labels.service_name"]
      }]
      documentation = "`${service}` instances have used more than ${var.cpu_threshold * 100}% CPU for 10 minutes: raise max instances or CPU, or lower concurrency."
    }
  }]...)

  # Counts of a log-based metric over 5 minutes, summed over the services.
  log_metric_count = {
    duration             = "0s"
    alignment_period     = "300s"
    per_series_aligner   = "ALIGN_SUM"
    cross_series_reducer = "REDUCE_SUM"
  }

  alerts = merge(local.service_alerts, {
    # Cloud SQL: down, no data, connection failures seen by the services.
    database = {
      display_name = "${local.title}: Cloud SQL down or unreachable"
      severity     = "CRITICAL"
      conditions = [
        {
          display_name       = "database/up < 1 for 5 min"
          filter             = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/up\""
          comparison         = "COMPARISON_LT"
          threshold_value    = 1
          duration           = "300s"
          per_series_aligner = "ALIGN_MIN"
        },
        {
          display_name       = "database/up missing for 10 min"
          absent             = true
          filter             = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/up\""
          duration           = "600s"
          per_series_aligner = "ALIGN_MIN"
        },
        merge(local.log_metric_count, {
          display_name    = "services failed to connect to Postgres > ${var.connection_failure_threshold} times in 5 min"
          filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.database_connection_failures.name}\""
          threshold_value = var.connection_failure_threshold
        }),
      ]
      documentation = "Cloud SQL `${var.sql_database_id}` is down, not reporting, or the services cannot connect to it (log metric `database_connection_failures`). Check the instance state, maintenance and failover events, and the connection pool size (DATABASE_MAX_CONNECTIONS x instances vs max_connections)."
    }

    database_cpu = {
      display_name = "${local.title}: Cloud SQL CPU > ${var.cpu_threshold * 100}%"
      severity     = "WARNING"
      conditions = [{
        display_name       = "Cloud SQL CPU utilisation > ${var.cpu_threshold * 100}% for 10 min"
        filter             = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\""
        threshold_value    = var.cpu_threshold
        duration           = "600s"
        per_series_aligner = "ALIGN_MEAN"
      }]
      documentation = "Cloud SQL CPU has been above ${var.cpu_threshold * 100}% for 10 minutes. Check Query Insights for the top queries; consider a larger tier."
    }

    # Redis: connections rejected by the instance, or failures seen by the services.
    redis = {
      display_name = "${local.title}: Redis connection failures"
      severity     = "CRITICAL"
      conditions = [
        {
          display_name         = "Memorystore rejected connections in 5 min"
          filter               = "${local.redis_filter} AND metric.type = \"redis.googleapis.com/stats/reject_connections_count\""
          threshold_value      = 0
          duration             = "0s"
          alignment_period     = "300s"
          cross_series_reducer = "REDUCE_SUM"
        },
        merge(local.log_metric_count, {
          display_name    = "services failed to connect to Redis > ${var.connection_failure_threshold} times in 5 min"
          filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.redis_connection_failures.name}\""
          threshold_value = var.connection_failure_threshold
        }),
      ]
      documentation = "The services cannot reach Memorystore `${var.redis_instance_id}`, or it rejects connections (maxclients). Rate limiting and replay protection depend on it. Check the instance state, maintenance, and REDIS_POOL_SIZE x instances."
    }

    # Webhooks and outbox.
    dead_deliveries = {
      display_name = "${local.title}: webhook deliveries marked dead"
      severity     = "WARNING"
      auto_close   = "3600s"
      conditions = [merge(local.log_metric_count, {
        display_name    = "\"delivery dead\" logged by ${var.worker_service_name}"
        filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.deliveries_dead.name}\""
        threshold_value = 0
      })]
      documentation = "At least one webhook delivery exhausted its Cloud Tasks attempts and was marked dead (published to `webhook-dead-letter`). If many endpoints fail at once, suspect the worker or its egress rather than the receivers."
    }

    outbox_backlog = {
      display_name = "${local.title}: outbox backlog older than ${var.outbox_backlog_age_threshold_seconds} s"
      severity     = "WARNING"
      conditions = [{
        display_name         = "p95 outbox backlog age > ${var.outbox_backlog_age_threshold_seconds} s for 10 min"
        filter               = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.outbox_backlog_age.name}\""
        threshold_value      = var.outbox_backlog_age_threshold_seconds
        duration             = "600s"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }]
      documentation = "Events wait in the outbox longer than ${var.outbox_backlog_age_threshold_seconds} s: the relay is stuck or Pub/Sub / Cloud Tasks refuse requests."
    }
  })
}

resource "google_monitoring_alert_policy" "this" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = local.channels

  dynamic "conditions" {
    for_each = [for c in each.value.conditions : merge(local.condition_defaults, c)]
    iterator = c

    content {
      display_name = c.value.display_name

      dynamic "condition_threshold" {
        for_each = c.value.absent ? [] : [c.value]
        iterator = t

        content {
          filter             = t.value.filter
          denominator_filter = t.value.denominator_filter
          comparison         = t.value.comparison
          threshold_value    = t.value.threshold_value
          duration           = t.value.duration

          aggregations {
            alignment_period     = t.value.alignment_period
            per_series_aligner   = t.value.per_series_aligner
            cross_series_reducer = t.value.cross_series_reducer
            group_by_fields      = t.value.group_by_fields
          }

          # The ratio alerts align the denominator like the numerator.
          dynamic "denominator_aggregations" {
            for_each = t.value.denominator_aggregations ? [t.value] : []
            iterator = d

            content {
              alignment_period     = d.value.alignment_period
              per_series_aligner   = d.value.per_series_aligner
              cross_series_reducer = d.value.cross_series_reducer
              group_by_fields      = d.value.group_by_fields
            }
          }

          trigger {
            count = 1
          }
        }
      }

      dynamic "condition_absent" {
        for_each = c.value.absent ? [c.value] : []
        iterator = a

        content {
          filter   = a.value.filter
          duration = a.value.duration

          aggregations {
            alignment_period   = a.value.alignment_period
            per_series_aligner = a.value.per_series_aligner
          }

          trigger {
            count = 1
          }
        }
      }
    }
  }

  alert_strategy {
    auto_close = try(each.value.auto_close, "1800s")
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.documentation
  }
}
