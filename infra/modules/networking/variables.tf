variable "project_id" {
  description = "GCP project that owns the network."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id (6-30 chars, lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the subnet used by Cloud Run Direct VPC egress."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-west1."
  }
}

variable "name" {
  description = "Name of the VPC network; also the prefix of the subnet and the private service range."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$", var.name))
    error_message = "name must be a lowercase RFC 1035 name of at most 42 characters."
  }
}

variable "subnet_cidr" {
  description = "Primary range of the serverless subnet. Direct VPC egress uses about two IPs per Cloud Run instance, so size it for 2 x (sum of max instances) plus headroom; /26 is Google's minimum."
  type        = string

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0)) && tonumber(split("/", var.subnet_cidr)[1]) <= 26
    error_message = "subnet_cidr must be an IPv4 CIDR of /26 or larger."
  }
}

variable "private_service_range_prefix_length" {
  description = "Prefix length of the range reserved for private service access (Cloud SQL and Memorystore take their IPs from it)."
  type        = number
  default     = 20

  validation {
    condition     = var.private_service_range_prefix_length >= 16 && var.private_service_range_prefix_length <= 24
    error_message = "private_service_range_prefix_length must be between 16 and 24."
  }
}

variable "flow_log_sampling" {
  description = "Fraction of VPC flow log records kept on the serverless subnet (0 < x <= 1)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.flow_log_sampling > 0 && var.flow_log_sampling <= 1
    error_message = "flow_log_sampling must be in (0, 1]."
  }
}
