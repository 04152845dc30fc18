output "exporter_url" {
  description = "Exporter URL; Prometheus scrapes /metrics with the EXPORTER_TOKEN bearer token."
  value       = module.triage.exporter_url
}

output "image_repository" {
  description = "Artifact Registry path the exporter image is pushed to."
  value       = module.triage.image_repository
}

output "secret_ids" {
  description = "Secrets whose values are added with gcloud secrets versions add."
  value       = module.triage.secret_ids
}

output "service_accounts" {
  description = "Service account emails (one per function, exporter, push, build)."
  value       = module.triage.service_accounts
}

output "source_bucket" {
  description = "Bucket receiving the function zips."
  value       = module.triage.source_bucket
}

output "subscriptions" {
  description = "Push subscription names."
  value       = module.triage.subscriptions
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = module.triage.topics
}

output "webhook_url" {
  description = "URL n8n posts tickets to."
  value       = module.triage.webhook_url
}
