# The reconciler hands unfinished tickets on again: parked ones (a destination asked for a wait longer
# than Pub/Sub's backoff, e.g. a rate-limit window) once their time has passed, and stale ones (no progress
# for hand_on_after_seconds: a lost message, a killed instance) to the stage owning their state. Cloud
# Scheduler calls it every minute with an OIDC token; only the scheduler's identity may invoke it.
module "reconcile" {
  source                = "../function"
  project_id            = var.project_id
  region                = var.region
  name                  = "reconcile"
  description           = "triage reconcile: Cloud Scheduler -> parked tickets due again -> triage-route"
  entry_point           = "reconcile"
  labels                = var.labels
  build_service_account = google_service_account.build.id
  service_account_id    = "triage-reconcile"
  source_archive = {
    bucket = local.source_bucket
    object = var.function_source_objects.reconcile
  }
  sizing = var.functions.reconcile
  # Cloud Scheduler in the same project counts as internal traffic for Cloud Run ingress.
  ingress_settings             = "ALLOW_INTERNAL_ONLY"
  environment_variables        = merge(local.common_env, var.functions.reconcile.env)
  secret_environment_variables = local.secret_env.reconcile
  # Reads the pending index and notes there when it last handed a ticket on.
  project_roles = ["roles/datastore.user"]
  invokers = {
    scheduler = google_service_account.scheduler.member
  }
  depends_on = [module.firestore]
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "triage-scheduler"
  display_name = "triage scheduler"
  description  = "OIDC identity of the triage Cloud Scheduler jobs; may only invoke reconcile."
}

resource "google_cloud_scheduler_job" "reconcile" {
  project     = var.project_id
  region      = var.region
  name        = "triage-reconcile"
  description = "Hands parked triage tickets back to route when their not-before time has passed."
  schedule    = var.reconcile_schedule
  time_zone   = "Etc/UTC"
  # A run that fails is simply the next run's work: no retries pile up behind a slow one.
  attempt_deadline = "${var.functions.reconcile.timeout_seconds}s"
  retry_config {
    retry_count = 0
  }
  http_target {
    http_method = "POST"
    uri         = module.reconcile.uri
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = module.reconcile.uri
    }
  }
}
