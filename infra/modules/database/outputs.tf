output "instance_name" {
  description = "Cloud SQL instance name."
  value       = google_sql_database_instance.this.name
}

output "instance_connection_name" {
  description = "PROJECT:REGION:INSTANCE, for Cloud Run's Cloud SQL volume and the Auth Proxy."
  value       = google_sql_database_instance.this.connection_name
}

output "database_id" {
  description = "PROJECT:INSTANCE, the database_id label of Cloud SQL metrics."
  value       = "${var.project_id}:${google_sql_database_instance.this.name}"
}

output "private_ip_address" {
  description = "Private IP of the instance."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database_name" {
  description = "Application database name."
  value       = google_sql_database.this.name
}

output "user_name" {
  description = "Application database user."
  value       = google_sql_user.api.name
}

output "database_url_secret_version" {
  description = "Version number of the database-url secret written by this module (pin it in Cloud Run)."
  value       = google_secret_manager_secret_version.database_url.version
}

output "password_secret_version" {
  description = "Version number of the password secret written by this module."
  value       = google_secret_manager_secret_version.password.version
}

output "database_read_url_secret_version" {
  description = "Version number of the database-read-url secret written by this module (pin it in Cloud Run); null without a read replica."
  value       = one(google_secret_manager_secret_version.database_read_url[*].version)
}
