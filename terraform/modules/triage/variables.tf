variable "classifier" {
  description = "Classifier behaviour: mode (local, llm or hybrid), the daily LLM budget in USD and, only to override config/triage.yaml's default model, a Gemini model id (null: GEMINI_MODEL is not set)."
  type = object({
    daily_budget_usd = optional(number, 5)
    gemini_model     = optional(string)
    mode             = optional(string, "hybrid")
  })
  default  = {}
  nullable = false
  validation {
    condition     = contains(["local", "llm", "hybrid"], var.classifier.mode)
    error_message = "mode is local, llm or hybrid."
  }
  validation {
    condition     = var.classifier.daily_budget_usd >= 0
    error_message = "daily_budget_usd cannot be negative."
  }
}

variable "deletion_protection" {
  description = "Protect stateful resources: Firestore delete protection, Cloud Run deletion protection, no force-destroy of the source bucket. True in prod."
  type        = bool
  default     = true
  nullable    = false
}

variable "exporter" {
  description = "Exporter (Cloud Run) sizing and access. public = true: no IAM check, the app requires its bearer token (EXPORTER_TOKEN)."
  type = object({
    concurrency   = optional(number, 8)
    cpu           = optional(string, "1")
    max_instances = optional(number, 2)
    memory        = optional(string, "512Mi")
    min_instances = optional(number, 1)
    public        = optional(bool, true)
  })
  default  = {}
  nullable = false
}

variable "exporter_image_tag" {
  description = "Tag of the exporter image in this module's Artifact Registry repository (make package writes it to dist/deploy.tfvars.json; it is a hash of the container context)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.exporter_image_tag))
    error_message = "Not a valid image tag."
  }
}

variable "firestore" {
  description = "Firestore (default) database: location (immutable) and point-in-time recovery."
  type = object({
    location_id            = string
    point_in_time_recovery = optional(bool, true)
  })
  nullable = false
}

variable "function_source_objects" {
  description = "Object names of the uploaded function zips in the source bucket, named by content hash (make package writes them to dist/deploy.tfvars.json)."
  type = object({
    classify  = string
    intake    = string
    reconcile = string
    route     = string
  })
  nullable = false
  validation {
    condition     = alltrue([for o in values(var.function_source_objects) : endswith(o, ".zip")])
    error_message = "Source objects are .zip archives."
  }
}

variable "functions" {
  description = "Per-function sizing and extra plain environment variables. concurrency > 1 needs cpu >= 1; classify and route timeouts are also the Pub/Sub ack deadline, so at most 600 s."
  type = object({
    classify = optional(object({
      concurrency     = optional(number, 8)
      cpu             = optional(string, "1")
      env             = optional(map(string), {})
      max_instances   = optional(number, 10)
      memory          = optional(string, "1Gi")
      min_instances   = optional(number, 0)
      timeout_seconds = optional(number, 120)
    }), {})
    intake = optional(object({
      concurrency     = optional(number, 16)
      cpu             = optional(string, "1")
      env             = optional(map(string), {})
      max_instances   = optional(number, 10)
      memory          = optional(string, "512M")
      min_instances   = optional(number, 0)
      timeout_seconds = optional(number, 60)
    }), {})
    reconcile = optional(object({
      concurrency     = optional(number, 1)
      cpu             = optional(string, "0.167")
      env             = optional(map(string), {})
      max_instances   = optional(number, 1)
      memory          = optional(string, "256M")
      min_instances   = optional(number, 0)
      timeout_seconds = optional(number, 60)
    }), {})
    route = optional(object({
      concurrency     = optional(number, 8)
      cpu             = optional(string, "1")
      env             = optional(map(string), {})
      max_instances   = optional(number, 10)
      memory          = optional(string, "512M")
      min_instances   = optional(number, 0)
      timeout_seconds = optional(number, 120)
    }), {})
  })
  default  = {}
  nullable = false
  validation {
    condition     = var.functions.classify.timeout_seconds <= 600 && var.functions.route.timeout_seconds <= 600
    error_message = "classify and route timeouts double as Pub/Sub ack deadlines: at most 600 s."
  }
  validation {
    condition     = var.functions.classify.concurrency > 1
    error_message = "classify waits about 1 s on each LLM call: give it concurrency > 1 (and cpu >= 1)."
  }
}

variable "integrations" {
  description = "Non-secret settings of the route targets (leave empty for an unused target; its secret still needs a placeholder version)."
  type = object({
    freshservice_base_url = optional(string, "")
    jira_base_url         = optional(string, "")
    jira_email            = optional(string, "")
  })
  default  = {}
  nullable = false
  validation {
    condition = alltrue([
      for u in [var.integrations.freshservice_base_url, var.integrations.jira_base_url] : u == "" || startswith(u, "https://")
    ])
    error_message = "Base URLs are https:// URLs (or empty)."
  }
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "log_level" {
  description = "TRIAGE_LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level is DEBUG, INFO, WARNING or ERROR."
  }
}

variable "project_id" {
  description = "Project of this environment (one environment per project: resource names are fixed)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "Not a valid project id."
  }
}

variable "pubsub" {
  description = "Push delivery policy of the work subscriptions: attempts before dead-lettering and the retry backoff."
  type = object({
    max_delivery_attempts = optional(number, 5)
    maximum_backoff       = optional(string, "600s")
    minimum_backoff       = optional(string, "10s")
  })
  default  = {}
  nullable = false
}

variable "reconcile_schedule" {
  description = "Cron schedule (UTC) of the reconciler that hands parked tickets back to route."
  type        = string
  default     = "* * * * *"
  nullable    = false
}

variable "region" {
  description = "Region of the functions, the exporter, the source bucket and the image repository."
  type        = string
}
