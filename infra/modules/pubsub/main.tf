# Pub/Sub: domain events, dead webhook deliveries, and a dead-letter topic
# for subscriptions that cannot process a message.

locals {
  pubsub_agent = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  all_topics = merge(var.topics, {
    (var.subscription_dead_letter_topic) = { message_retention_duration = "2678400s" }
  })
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:Messages are event metadata and delivery records (no secrets, no payload credentials); Google-managed encryption at rest is accepted. kms_key_name enables CMEK when a customer requires it.
  for_each = local.all_topics

  project                    = var.project_id
  name                       = each.key
  labels                     = var.labels
  message_retention_duration = each.value.message_retention_duration
  kms_key_name               = var.kms_key_name

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }
}

resource "google_pubsub_subscription" "this" {
  for_each = var.subscriptions

  project                    = var.project_id
  name                       = each.key
  topic                      = google_pubsub_topic.this[each.value.topic].id
  labels                     = var.labels
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = each.value.message_retention_duration
  retain_acked_messages      = false
  enable_message_ordering    = each.value.enable_message_ordering

  expiration_policy {
    ttl = "" # never expires
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.this[var.subscription_dead_letter_topic].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = each.value.minimum_backoff
    maximum_backoff = each.value.maximum_backoff
  }

  depends_on = [google_pubsub_topic_iam_member.agent_dead_letter_publisher]
}

# Holds what subscriptions gave up on, for inspection and replay.
resource "google_pubsub_subscription" "dead_letter_hold" {
  project                    = var.project_id
  name                       = "${var.subscription_dead_letter_topic}-hold"
  topic                      = google_pubsub_topic.this[var.subscription_dead_letter_topic].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards dead letters: it must publish to the
# dead-letter topic and acknowledge on the source subscriptions.
resource "google_pubsub_topic_iam_member" "agent_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.this[var.subscription_dead_letter_topic].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscriber" {
  for_each = google_pubsub_subscription.this

  project      = var.project_id
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = var.publishers

  project = var.project_id
  topic   = google_pubsub_topic.this[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value.email}"
}
