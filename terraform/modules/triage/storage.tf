locals {
  image_repository = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

# Function zips, uploaded by CI (or by hand) as functions/NAME-SHA.zip: an object name changes
# only when the content does, and older objects stay for rollbacks.
resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs that CI writes; access logging would log our own deploys. Data-access audit logs can be enabled project-wide if needed.
  project                     = var.project_id
  name                        = "${var.project_id}-triage-sources"
  location                    = var.region
  labels                      = var.labels
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Holds only the exporter image (no data, no secrets); Google-managed encryption suffices and CMEK would add a KMS key per environment.
  project       = var.project_id
  location      = var.region
  repository_id = "triage"
  description   = "triage container images (exporter), tagged by content hash."
  format        = "DOCKER"
  labels        = var.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "7776000s"
    }
  }
}
