output "crypto_key_id" {
  description = "Full key name (projects/P/locations/R/keyRings/K/cryptoKeys/N): WEBHOOK_SECRET_KMS_KEY."
  value       = google_kms_crypto_key.this.id
}
