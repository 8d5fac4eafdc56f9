# Secret Manager secrets read by the Cloud Run services and jobs, with
# roles/secretmanager.secretAccessor granted per secret to the service
# accounts that read it, and to nobody else (no project-level grant).

locals {
  accessor_bindings = merge([
    for id, secret in var.secrets : {
      for label, email in secret.accessors : "${id}/${label}" => {
        secret_id = id
        member    = "serviceAccount:${email}"
      }
    }
  ]...)

  generated       = { for id, secret in var.secrets : id => secret if secret.generated && secret.generated_as == "password" }
  generated_bytes = { for id, secret in var.secrets : id => secret if secret.generated && secret.generated_as == "base64_bytes" }
}

resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = each.key
  labels    = var.labels

  annotations = {
    description = each.value.description
  }

  replication {
    dynamic "auto" {
      for_each = length(var.replica_locations) == 0 ? [1] : []
      content {}
    }

    dynamic "user_managed" {
      for_each = length(var.replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = toset(var.replica_locations)
          content {
            location = replicas.value
          }
        }
      }
    }
  }
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.accessor_bindings

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret_id].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}

# Secrets generated here (generated = true): passwords of URL-safe
# characters, and random bytes in base64 (the platform signing key). The
# values are also in the Terraform state, as the database password is.
resource "random_password" "generated" {
  for_each = local.generated

  length  = each.value.generated_length
  special = false
}

resource "google_secret_manager_secret_version" "generated" {
  for_each = local.generated

  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = random_password.generated[each.key].result
}

resource "random_bytes" "generated" {
  for_each = local.generated_bytes

  length = each.value.generated_length
}

resource "google_secret_manager_secret_version" "generated_bytes" {
  for_each = local.generated_bytes

  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = random_bytes.generated[each.key].base64
}
