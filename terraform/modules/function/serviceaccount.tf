resource "google_service_account" "service_account" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "triage function ${var.name}"
  description  = "Runtime identity of the ${var.name} function only; never shared with another function."
}

resource "google_project_iam_member" "service_account" {
  for_each = toset(var.project_roles)
  project  = var.project_id
  role     = each.key
  member   = google_service_account.service_account.member
}
