output "database_id" {
  description = "Fully qualified database id."
  value       = google_firestore_database.database.id
}

output "database_name" {
  description = "Database name."
  value       = google_firestore_database.database.name
}

output "index_ids" {
  description = "Composite index ids, by index key."
  value       = { for k, v in google_firestore_index.index : k => v.id }
}

output "ttl_fields" {
  description = "collection.field names with a TTL policy."
  value       = keys(google_firestore_field.ttl)
}
