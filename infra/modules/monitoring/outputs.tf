output "notification_channel_id" {
  description = "Email notification channel id."
  value       = google_monitoring_notification_channel.email.id
}

output "dashboard_id" {
  description = "Dashboard resource id."
  value       = google_monitoring_dashboard.this.id
}

output "alert_policy_ids" {
  description = "Alert policy ids by purpose (error_rate_<service>, latency_<service>, cpu_<service>, database, database_cpu, redis, dead_deliveries, outbox_backlog)."
  value       = { for k, p in google_monitoring_alert_policy.this : k => p.id }
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
