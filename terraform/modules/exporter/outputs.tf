output "name" {
  description = "Cloud Run service name."
  value       = google_cloud_run_v2_service.exporter.name
}

output "service_account_email" {
  description = "Email of the exporter's service account."
  value       = google_service_account.service_account.email
}

output "uri" {
  description = "HTTPS URI of the exporter (scrape URI/metrics with the bearer token)."
  value       = google_cloud_run_v2_service.exporter.uri
}
