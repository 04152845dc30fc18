locals {
  ttl_fields       = { for f in var.ttl_fields : "${f.collection}.${f.field}" => f }
  unindexed_fields = { for f in var.unindexed_fields : "${f.collection}.${f.field}" => f }
}

resource "google_firestore_database" "database" {
  project                           = var.project_id
  name                              = var.database_name
  location_id                       = var.location_id
  type                              = "FIRESTORE_NATIVE"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # ABANDON: `terraform destroy` forgets a protected database instead of trying to delete it.
  deletion_policy = var.deletion_protection ? "ABANDON" : "DELETE"
}

resource "google_firestore_index" "index" {
  for_each    = var.indexes
  project     = var.project_id
  database    = google_firestore_database.database.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }
}

resource "google_firestore_field" "ttl" {
  for_each   = local.ttl_fields
  project    = var.project_id
  database   = google_firestore_database.database.name
  collection = each.value.collection
  field      = each.value.field

  ttl_config {}

  # An empty index_config removes the field's single-field indexes.
  dynamic "index_config" {
    for_each = each.value.exempt_from_indexing ? [""] : []
    content {}
  }
}

# Fields nobody queries whose maps grow with traffic (e.g. the unfinished-ticket index): no index
# entries, so writes stay cheap and documents stay far from the per-document index-entry limit.
resource "google_firestore_field" "unindexed" {
  for_each   = local.unindexed_fields
  project    = var.project_id
  database   = google_firestore_database.database.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}
}
