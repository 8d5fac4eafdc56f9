# Cloud KMS for webhook secrets at rest (shared/src/sealing): the key wraps
# the data keys the secrets are sealed with. The API (and the migrate job,
# which runs as the API) may only encrypt with it, the worker only decrypt,
# so an API compromise reads no stored secret and the worker writes none.

resource "google_kms_key_ring" "this" {
  project  = var.project_id
  location = var.region
  name     = var.key_ring_name
}

resource "google_kms_crypto_key" "this" {
  name     = var.key_name
  key_ring = google_kms_key_ring.this.id
  purpose  = "ENCRYPT_DECRYPT"
  # A new primary version every 90 days: new data keys are wrapped by it,
  # older versions stay enabled to unwrap what they wrapped.
  rotation_period = var.rotation_period

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = "SOFTWARE"
  }

  # Destroying the key would make every stored webhook secret unreadable.
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "encrypter" {
  for_each = var.encrypters

  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypter"
  member        = "serviceAccount:${each.value}"
}

resource "google_kms_crypto_key_iam_member" "decrypter" {
  for_each = var.decrypters

  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyDecrypter"
  member        = "serviceAccount:${each.value}"
}
