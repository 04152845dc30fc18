# Same variables in every environment; values in terraform.tfvars. The module validates them.
# function_source_objects and exporter_image_tag come from the generated
# dist/deploy.tfvars.json (make package): pass it with -var-file.

variable "classifier" {
  description = "Classifier mode (local, llm, hybrid), daily LLM budget in USD, and gemini_model only to override config/triage.yaml's default model."
  type = object({
    daily_budget_usd = optional(number)
    gemini_model     = optional(string)
    mode             = optional(string)
  })
}

variable "deletion_protection" {
  description = "Protect Firestore, the exporter service and the source bucket from deletion."
  type        = bool
}

variable "exporter" {
  description = "Exporter sizing and access (public = bearer token at the app level instead of IAM)."
  type = object({
    concurrency   = optional(number)
    cpu           = optional(string)
    max_instances = optional(number)
    memory        = optional(string)
    min_instances = optional(number)
    public        = optional(bool)
  })
}

variable "exporter_image_tag" {
  description = "Exporter image tag (content hash), from dist/deploy.tfvars.json."
  type        = string
}

variable "firestore" {
  description = "Firestore location (immutable) and point-in-time recovery."
  type = object({
    location_id            = string
    point_in_time_recovery = optional(bool)
  })
}

variable "function_source_objects" {
  description = "Uploaded function zip object names (content-hashed), from dist/deploy.tfvars.json."
  type = object({
    classify  = string
    intake    = string
    reconcile = string
    route     = string
  })
}

variable "functions" {
  description = "Per-function sizing (cpu, memory, timeout, instances, concurrency) and extra plain env vars."
  type = object({
    classify = optional(object({
      concurrency     = optional(number)
      cpu             = optional(string)
      env             = optional(map(string))
      max_instances   = optional(number)
      memory          = optional(string)
      min_instances   = optional(number)
      timeout_seconds = optional(number)
    }))
    intake = optional(object({
      concurrency     = optional(number)
      cpu             = optional(string)
      env             = optional(map(string))
      max_instances   = optional(number)
      memory          = optional(string)
      min_instances   = optional(number)
      timeout_seconds = optional(number)
    }))
    reconcile = optional(object({
      concurrency     = optional(number)
      cpu             = optional(string)
      env             = optional(map(string))
      max_instances   = optional(number)
      memory          = optional(string)
      min_instances   = optional(number)
      timeout_seconds = optional(number)
    }))
    route = optional(object({
      concurrency     = optional(number)
      cpu             = optional(string)
      env             = optional(map(string))
      max_instances   = optional(number)
      memory          = optional(string)
      min_instances   = optional(number)
      timeout_seconds = optional(number)
    }))
  })
}

variable "integrations" {
  description = "Non-secret route target settings (Jira, Freshservice)."
  type = object({
    freshservice_base_url = optional(string)
    jira_base_url         = optional(string)
    jira_email            = optional(string)
  })
}

variable "labels" {
  description = "Labels on every resource."
  type        = map(string)
}

variable "log_level" {
  description = "TRIAGE_LOG_LEVEL of the functions."
  type        = string
}

variable "project_id" {
  description = "Project of this environment."
  type        = string
}

variable "pubsub" {
  description = "Delivery attempts before dead-lettering and retry backoff."
  type = object({
    max_delivery_attempts = optional(number)
    maximum_backoff       = optional(string)
    minimum_backoff       = optional(string)
  })
}

variable "region" {
  description = "Region of the functions, exporter, bucket and image repository."
  type        = string
}
