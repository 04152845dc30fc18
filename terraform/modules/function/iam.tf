# Gen2 functions are served by a Cloud Run service of the same name: invocation rights are
# roles/run.invoker on that service (roles/cloudfunctions.invoker does not let a request through).
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_secret_manager_secret_iam_member" "secret_accessor" {
  for_each  = toset(values(var.secret_environment_variables))
  project   = var.project_id
  secret_id = each.key
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.service_account.member
}
