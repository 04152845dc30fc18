output "ids" {
  description = "Fully qualified secret ids, by secret id."
  value       = { for k, v in google_secret_manager_secret.secret : k => v.id }
}

output "secret_ids" {
  description = "Secret ids (short names), by secret id; reference these so consumers depend on the secrets."
  value       = { for k, v in google_secret_manager_secret.secret : k => v.secret_id }
}
