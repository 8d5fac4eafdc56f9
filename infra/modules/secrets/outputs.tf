output "secret_ids" {
  description = "Secret id (short name, usable in Cloud Run secret_key_ref) by key."
  value       = { for id, s in google_secret_manager_secret.this : id => s.secret_id }
}

output "secret_names" {
  description = "Full resource id (projects/P/secrets/S) by key."
  value       = { for id, s in google_secret_manager_secret.this : id => s.id }
}

output "generated_versions" {
  description = "Version number of each generated secret's value, to pin in Cloud Run."
  value = merge(
    { for id, v in google_secret_manager_secret_version.generated : id => v.version },
    { for id, v in google_secret_manager_secret_version.generated_bytes : id => v.version },
  )
}
