resource "google_cloud_run_v2_service" "exporter" {
  project             = var.project_id
  location            = var.region
  name                = var.name
  labels              = var.labels
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  # Authentication is the app's bearer token (EXPORTER_TOKEN) when public; see README.
  invoker_iam_disabled = var.public

  template {
    service_account                  = google_service_account.service_account.email
    max_instance_request_concurrency = var.sizing.concurrency
    timeout                          = var.sizing.timeout

    scaling {
      min_instance_count = var.sizing.min_instances
      max_instance_count = var.sizing.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      # /healthz answers without touching Firestore: it says the process serves, nothing more.
      startup_probe {
        period_seconds    = 2
        failure_threshold = 30
        http_get {
          path = "/healthz"
        }
      }

      resources {
        limits = {
          cpu    = var.sizing.cpu
          memory = var.sizing.memory
        }
        cpu_idle = true
      }

      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project_id
      }

      dynamic "env" {
        for_each = var.environment_variables
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_environment_variables
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.secret_accessor]
}
