resource "google_service_account" "service_account" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "triage exporter"
  description  = "Runtime identity of the Prometheus exporter: reads Firestore, nothing else."
}

resource "google_project_iam_member" "service_account" {
  for_each = toset(var.project_roles)
  project  = var.project_id
  role     = each.key
  member   = google_service_account.service_account.member
}

resource "google_secret_manager_secret_iam_member" "secret_accessor" {
  for_each  = toset(values(var.secret_environment_variables))
  project   = var.project_id
  secret_id = each.key
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.service_account.member
}
