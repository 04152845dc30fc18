output "function_id" {
  description = "Fully qualified function id."
  value       = google_cloudfunctions2_function.function.id
}

output "name" {
  description = "Function name (also its Cloud Run service name)."
  value       = google_cloudfunctions2_function.function.name
}

output "service_account_email" {
  description = "Email of the function's own service account."
  value       = google_service_account.service_account.email
}

output "service_account_member" {
  description = "IAM member string (serviceAccount:EMAIL) of the function's service account."
  value       = google_service_account.service_account.member
}

output "service_name" {
  description = "Cloud Run service backing the function."
  value       = google_cloudfunctions2_function.function.service_config[0].service
}

output "uri" {
  description = "HTTPS URI of the function's Cloud Run service (use it as push endpoint base and OIDC audience)."
  value       = google_cloudfunctions2_function.function.service_config[0].uri
}
