variable "database_name" {
  description = "Database name; the functions use the (default) database."
  type        = string
  default     = "(default)"
}

variable "deletion_protection" {
  description = "Enable Firestore delete protection (and keep the database when Terraform destroys it). Turn on in prod."
  type        = bool
  default     = true
  nullable    = false
}

variable "indexes" {
  description = "Composite indexes keyed by a static name: collection and ordered fields."
  type = map(object({
    collection = string
    fields = list(object({
      field_path = string
      order      = optional(string, "ASCENDING")
    }))
  }))
  default  = {}
  nullable = false
  validation {
    condition = alltrue(flatten([
      for index in values(var.indexes) : [for field in index.fields : contains(["ASCENDING", "DESCENDING"], field.order)]
    ]))
    error_message = "Field order is ASCENDING or DESCENDING."
  }
  validation {
    condition     = alltrue([for index in values(var.indexes) : length(index.fields) >= 2])
    error_message = "A composite index has at least two fields."
  }
}

variable "location_id" {
  description = "Firestore location (region such as europe-west1 or multi-region such as eur3). Immutable once created."
  type        = string
}

variable "point_in_time_recovery" {
  description = "Enable point-in-time recovery (7 days of versions, billed as storage)."
  type        = bool
  default     = true
  nullable    = false
}

variable "project_id" {
  description = "Project holding the database."
  type        = string
}

variable "ttl_fields" {
  description = "Timestamp fields whose documents Firestore deletes once the time has passed. exempt_from_indexing drops the single-field indexes of a field nobody queries (avoids write hotspots on monotonically increasing timestamps)."
  type = list(object({
    collection           = string
    exempt_from_indexing = optional(bool, true)
    field                = string
  }))
  default  = []
  nullable = false
}

variable "unindexed_fields" {
  description = "Fields exempted from single-field indexing (never queried; maps that grow with traffic)."
  type = list(object({
    collection = string
    field      = string
  }))
  default  = []
  nullable = false
}
