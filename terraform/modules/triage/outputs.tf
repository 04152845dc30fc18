output "exporter_url" {
  description = "Exporter base URL; Prometheus scrapes URL/metrics with the EXPORTER_TOKEN bearer token."
  value       = module.exporter.uri
}

output "image_repository" {
  description = "Artifact Registry path for the exporter image (REPOSITORY/exporter:TAG)."
  value       = local.image_repository
}

output "secret_ids" {
  description = "Secret Manager secret ids; add their values with `gcloud secrets versions add`."
  value       = local.secret_ids
}

output "service_accounts" {
  description = "Service account emails, one per function plus the exporter, Pub/Sub push and build identities."
  value = {
    build     = google_service_account.build.email
    classify  = module.classify.service_account_email
    exporter  = module.exporter.service_account_email
    intake    = module.intake.service_account_email
    push      = google_service_account.push.email
    reconcile = module.reconcile.service_account_email
    route     = module.route.service_account_email
    scheduler = google_service_account.scheduler.email
  }
}

output "source_bucket" {
  description = "Bucket that receives the function zips (make package; see docs/DEPLOY.md)."
  value       = google_storage_bucket.sources.name
}

output "subscriptions" {
  description = "Push subscription names."
  value = {
    classify     = module.stage_classify.work_subscription
    classify_dlq = module.stage_classify.dead_letter_subscription
    route        = module.stage_route.work_subscription
    route_dlq    = module.stage_route.dead_letter_subscription
  }
}

output "topics" {
  description = "Pub/Sub topic names."
  value = {
    classify     = module.stage_classify.topic
    classify_dlq = module.stage_classify.dead_letter_topic
    route        = module.stage_route.topic
    route_dlq    = module.stage_route.dead_letter_topic
  }
}

output "webhook_url" {
  description = "URL n8n posts tickets to (intake URI + /tickets)."
  value       = "${module.intake.uri}/tickets"
}
