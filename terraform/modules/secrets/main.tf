# Only the secret containers live here. Access is granted by the consumers (function and
# exporter modules) to their own service account, secret by secret; no secret_version
# resource exists anywhere, so no value ever lands in tfvars or state.
resource "google_secret_manager_secret" "secret" {
  for_each  = toset(var.secret_ids)
  project   = var.project_id
  secret_id = each.key
  labels    = var.labels

  replication {
    auto {}
  }
}
