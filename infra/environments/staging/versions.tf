terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state in a GCS bucket created by hand together with the project
  # (versioning on, uniform access, readable only by the people and CI that
  # run Terraform: the state holds the generated secrets). The bucket is
  # given at init time:
  #   terraform init -backend-config="bucket=<PROJECT_ID>-tfstate"
  backend "gcs" {
    prefix = "agent-registry/staging"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app         = "agent-registry"
    environment = var.environment
    managed-by  = "terraform"
  }
}
