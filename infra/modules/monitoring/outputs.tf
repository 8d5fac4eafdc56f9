output "notification_channel_id" {
  description = "Email notification channel id."
  value       = google_monitoring_notification_channel.email.id
}

output "dashboard_id" {
  description = "Dashboard resource id."
  value       = google_monitoring_dashboard.this.id
}

output "alert_policy_ids" {
  description = "Alert policy ids by purpose."
  value = merge(
    { for k, p in google_monitoring_alert_policy.error_rate : "error_rate_${k}" => p.id },
    { for k, p in google_monitoring_alert_policy.latency : "latency_${k}" => p.id },
    { for k, p in google_monitoring_alert_policy.cpu : "cpu_${k}" => p.id },
    {
      database        = google_monitoring_alert_policy.database.id
      database_cpu    = google_monitoring_alert_policy.database_cpu.id
      redis           = google_monitoring_alert_policy.redis.id
      dead_deliveries = google_monitoring_alert_policy.dead_deliveries.id
      outbox_backlog  = google_monitoring_alert_policy.outbox_backlog.id
    },
  )
}

output "log_metric_names" {
  description = "Log-based metric names."
  value = [
    google_logging_metric.deliveries_dead.name,
    google_logging_metric.delivery_outcomes.name,
    google_logging_metric.outbox_backlog_age.name,
    google_logging_metric.database_connection_failures.name,
    google_logging_metric.redis_connection_failures.name,
  ]
}
