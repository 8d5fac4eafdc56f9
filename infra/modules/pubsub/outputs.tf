output "topic_names" {
  description = "Topic short names by name."
  value       = { for k, t in google_pubsub_topic.this : k => t.name }
}

output "topic_ids" {
  description = "Topic resource ids (projects/P/topics/T) by name."
  value       = { for k, t in google_pubsub_topic.this : k => t.id }
}

output "subscription_ids" {
  description = "Subscription resource ids by name."
  value = merge(
    { for k, s in google_pubsub_subscription.this : k => s.id },
    { (google_pubsub_subscription.dead_letter_hold.name) = google_pubsub_subscription.dead_letter_hold.id },
  )
}

output "subscription_dead_letter_topic" {
  description = "Name of the dead-letter topic used by the subscriptions."
  value       = google_pubsub_topic.this[var.subscription_dead_letter_topic].name
}
