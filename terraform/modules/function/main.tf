resource "google_cloudfunctions2_function" "function" {
  #checkov:skip=CKV_GCP_124:Ingress is chosen per instance (var.ingress_settings, default internal only). Only intake, the public n8n webhook, uses ALLOW_ALL; it rejects any request without TRIAGE_WEBHOOK_SECRET (bearer token or HMAC signature).
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = var.source_archive.bucket
        object = var.source_archive.object
      }
    }
  }

  service_config {
    available_cpu                    = var.sizing.cpu
    available_memory                 = var.sizing.memory
    max_instance_count               = var.sizing.max_instances
    min_instance_count               = var.sizing.min_instances
    max_instance_request_concurrency = var.sizing.concurrency
    timeout_seconds                  = var.sizing.timeout_seconds
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.service_account.email
    environment_variables            = var.environment_variables

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment_variables
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  # A revision that references a secret the service account cannot read fails to deploy.
  depends_on = [google_secret_manager_secret_iam_member.secret_accessor]
}
