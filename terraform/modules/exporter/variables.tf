variable "deletion_protection" {
  description = "Cloud Run deletion protection (Terraform refuses to destroy the service while true)."
  type        = bool
  default     = true
  nullable    = false
}

variable "environment_variables" {
  description = "Plain environment variables of the exporter container."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "image" {
  description = "Container image built from dist/exporter (make package), e.g. REGION-docker.pkg.dev/PROJECT/triage/exporter:TAG."
  type        = string
}

variable "labels" {
  description = "Resource labels."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "name" {
  description = "Cloud Run service name."
  type        = string
  default     = "triage-exporter"
}

variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "project_roles" {
  description = "Project-level roles of the exporter's service account (read-only Firestore access)."
  type        = list(string)
  default     = ["roles/datastore.viewer"]
  nullable    = false
}

variable "public" {
  description = "Skip the Cloud Run IAM invoker check (invoker_iam_disabled) so Prometheus can scrape from outside Google Cloud; the app then requires its EXPORTER_TOKEN bearer token on every request. False requires IAM (roles/run.invoker) instead."
  type        = bool
  default     = true
  nullable    = false
}

variable "region" {
  description = "Region of the service."
  type        = string
}

variable "secret_environment_variables" {
  description = "Environment variables read from Secret Manager (latest version): ENV_NAME => secret id. The module grants its service account secretAccessor on each."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "service_account_id" {
  description = "Account id of the exporter's own service account."
  type        = string
  default     = "triage-exporter"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "6-30 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "sizing" {
  description = "Container resources and scaling. One instance stays warm so scrapes never wait for a cold start."
  type = object({
    concurrency   = optional(number, 8)
    cpu           = optional(string, "1")
    max_instances = optional(number, 2)
    memory        = optional(string, "512Mi")
    min_instances = optional(number, 1)
    timeout       = optional(string, "30s")
  })
  default  = {}
  nullable = false
  validation {
    condition     = var.sizing.min_instances >= 0 && var.sizing.max_instances >= 1 && var.sizing.min_instances <= var.sizing.max_instances
    error_message = "0 <= min_instances <= max_instances and max_instances >= 1."
  }
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.sizing.memory))
    error_message = "memory looks like 512Mi or 1Gi."
  }
  validation {
    condition     = can(regex("^[0-9]+s$", var.sizing.timeout))
    error_message = "timeout is a duration in seconds, e.g. 30s."
  }
}
