# Identity whose OIDC token Pub/Sub attaches to every push (classify and route grant it
# roles/run.invoker; nothing else).
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "triage-pubsub-push"
  display_name = "triage Pub/Sub push"
  description  = "OIDC identity of the triage push subscriptions; may only invoke classify and route."
}

# The Pub/Sub service agent mints the push tokens for that identity.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Builds the three functions (Cloud Build), instead of the default compute service account.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "triage-functions-build"
  display_name = "triage functions build"
  description  = "Cloud Build identity for building the triage functions."
}

# The roles Google documents for a user-specified function build account: build logs,
# pushing the built image to gcf-artifacts, and reading the source that Cloud Functions
# copies into its own gcf-v2-sources-* bucket (hence project level).
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
    "roles/storage.objectAdmin",
  ])
  project = var.project_id
  role    = each.key
  member  = google_service_account.build.member
}
