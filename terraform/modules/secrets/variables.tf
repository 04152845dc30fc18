variable "labels" {
  description = "Resource labels."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "project_id" {
  description = "Project holding the secrets."
  type        = string
}

variable "secret_ids" {
  description = "Secret ids to create (containers only: values are added outside Terraform with `gcloud secrets versions add`, so they never reach the state)."
  type        = list(string)
  nullable    = false
  validation {
    condition     = alltrue([for id in var.secret_ids : can(regex("^[a-zA-Z0-9_-]{1,255}$", id))])
    error_message = "Secret ids use letters, digits, hyphens and underscores."
  }
}
