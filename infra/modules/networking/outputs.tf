output "network_id" {
  description = "Id of the VPC network (projects/P/global/networks/N)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC network."
  value       = google_compute_network.this.name
}

output "network_self_link" {
  description = "Self link of the VPC network."
  value       = google_compute_network.this.self_link
}

output "subnetwork_id" {
  description = "Id of the subnet Cloud Run uses for Direct VPC egress."
  value       = google_compute_subnetwork.serverless.id
}

output "subnetwork_name" {
  description = "Name of the subnet Cloud Run uses for Direct VPC egress."
  value       = google_compute_subnetwork.serverless.name
}

output "private_services_network" {
  description = "The network id, read from the private service connection so that users (Cloud SQL, Memorystore) wait for the peering to exist."
  value       = google_service_networking_connection.private_services.network
}

output "private_services_range_name" {
  description = "Name of the allocated range for private service access."
  value       = google_compute_global_address.private_services.name
}
