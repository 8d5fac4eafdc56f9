# Network for the private data stores and the serverless egress of Cloud Run.
#
# Serverless egress: Direct VPC egress (the Cloud Run revision gets an
# interface in `google_compute_subnetwork.serverless`), not a Serverless VPC
# Access connector. Direct VPC egress has no connector VMs to size, pay for
# and patch, has lower latency and higher throughput, and scales with the
# service. Its cost is IP space: about two subnet IPs per instance, which is
# why `subnet_cidr` is validated to be at least a /26.

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "serverless" {
  project                  = var.project_id
  name                     = "${var.name}-serverless"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = var.flow_log_sampling
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Private service access: a range in this VPC peered to Google's service
# producer network, where Cloud SQL (private IP) and Memorystore
# (PRIVATE_SERVICE_ACCESS connect mode) get their addresses.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_service_range_prefix_length
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]

  # Removing the peering fails while producers (Cloud SQL) still hold
  # addresses in it; on destroy, leave it to be cleaned up with the network.
  deletion_policy = "ABANDON"
}

# Nothing in this VPC accepts connections from outside it: Cloud Run
# instances only make outbound connections, and Cloud SQL / Memorystore
# live in Google's peered producer network. Make the implied deny explicit
# and logged, so a later "allow" rule is a visible, reviewed exception.
resource "google_compute_firewall" "deny_all_ingress" {
  project     = var.project_id
  name        = "${var.name}-deny-all-ingress"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 65534
  description = "Deny all ingress (explicit and logged)."

  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
