output "instance_id" {
  description = "Full instance id (projects/P/locations/R/instances/N), the instance_id label of Redis metrics."
  value       = google_redis_instance.this.id
}

output "name" {
  description = "Instance name."
  value       = google_redis_instance.this.name
}

output "host" {
  description = "Private IP of the instance."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "TLS port of the instance."
  value       = google_redis_instance.this.port
}

output "server_ca_cert_pem" {
  description = "Server CA certificates (PEM) clients must trust for TLS."
  value       = local.ca_pem
}

output "redis_url_secret_version" {
  description = "Version number of the redis-url secret written by this module (pin it in Cloud Run)."
  value       = google_secret_manager_secret_version.redis_url.version
}

output "ca_cert_secret_version" {
  description = "Version number of the CA certificate secret written by this module."
  value       = google_secret_manager_secret_version.ca_cert.version
}

output "read_endpoint" {
  description = "Read endpoint (read replicas only; empty otherwise)."
  value       = google_redis_instance.this.read_endpoint
}
