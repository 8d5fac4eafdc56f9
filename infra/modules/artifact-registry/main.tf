# Docker repository for the api and worker images, with cleanup policies:
# keep the N most recent versions of each image, delete untagged versions
# after a week and anything else after a month. KEEP wins over DELETE.

resource "google_artifact_registry_repository" "this" {
  #checkov:skip=CKV_GCP_84:Images hold compiled binaries only (no secrets; those come from Secret Manager at run time); Google-managed encryption is accepted. kms_key_name enables CMEK when required.
  project       = var.project_id
  location      = var.region
  repository_id = var.repository_id
  description   = "agent-registry container images (api, worker)"
  format        = "DOCKER"
  labels        = var.labels
  kms_key_name  = var.kms_key_name

  docker_config {
    # Deploys reference images by git SHA tag or digest; a tag must never be
    # moved to other content. A re-deploy of the same SHA must reuse the
    # pushed image instead of pushing a rebuild under the same tag.
    immutable_tags = var.immutable_tags
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_versions
    }
  }

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_older_than_days * 86400}s"
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "${var.delete_older_than_days * 86400}s"
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "writer" {
  for_each = var.writers

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${each.value}"
}
