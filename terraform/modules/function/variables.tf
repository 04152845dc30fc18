variable "build_service_account" {
  description = "Service account id (projects/PROJECT/serviceAccounts/EMAIL) Cloud Build uses to build the function; null keeps the platform default."
  type        = string
  default     = null
  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "Use the service account id form projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "description" {
  description = "Function description."
  type        = string
  default     = null
}

variable "entry_point" {
  description = "Name of the decorated Python function functions-framework serves."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.entry_point))
    error_message = "The entry point must be a Python identifier."
  }
}

variable "environment_variables" {
  description = "Plain runtime environment variables. Never put secret values here: use secret_environment_variables."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "ingress_settings" {
  description = "Network ingress: ALLOW_ALL for a public endpoint, ALLOW_INTERNAL_ONLY for functions only Pub/Sub push (same project) calls."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"
  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "Allowed values: ALLOW_ALL, ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "invokers" {
  description = "Members granted roles/run.invoker on the function's Cloud Run service, keyed by a static name (keys must be known at plan time, values need not be)."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "labels" {
  description = "Resource labels."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "name" {
  description = "Function name; also the name of its Cloud Run service."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.name))
    error_message = "Lowercase letters, digits and hyphens, starting with a letter, at most 50 characters."
  }
}

variable "project_id" {
  description = "Project the function lives in."
  type        = string
}

variable "project_roles" {
  description = "Project-level roles granted to the function's service account (keep to the least the code needs)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python312"
}

variable "secret_environment_variables" {
  description = "Environment variables read from Secret Manager (latest version): ENV_NAME => secret id in this project. The module grants its service account secretAccessor on each of them."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "service_account_id" {
  description = "Account id of the service account created for this function alone."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "6-30 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "sizing" {
  description = "Per-instance resources and scaling. concurrency > 1 needs cpu >= 1."
  type = object({
    concurrency     = optional(number, 1)
    cpu             = optional(string, "0.167")
    max_instances   = optional(number, 10)
    memory          = optional(string, "256M")
    min_instances   = optional(number, 0)
    timeout_seconds = optional(number, 60)
  })
  default  = {}
  nullable = false
  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.sizing.memory))
    error_message = "memory looks like 256M, 512Mi or 1Gi."
  }
  validation {
    condition     = can(tonumber(var.sizing.cpu)) && try(tonumber(var.sizing.cpu) > 0, false)
    error_message = "cpu is a positive number as a string, e.g. \"0.167\" or \"1\"."
  }
  validation {
    condition     = var.sizing.concurrency >= 1 && var.sizing.concurrency <= 1000
    error_message = "concurrency is between 1 and 1000."
  }
  validation {
    condition     = var.sizing.concurrency == 1 || try(tonumber(var.sizing.cpu) >= 1, false)
    error_message = "concurrency > 1 requires at least 1 vCPU."
  }
  validation {
    condition     = var.sizing.timeout_seconds >= 1 && var.sizing.timeout_seconds <= 3600
    error_message = "timeout_seconds is between 1 and 3600."
  }
  validation {
    condition     = var.sizing.min_instances >= 0 && var.sizing.max_instances >= 1 && var.sizing.min_instances <= var.sizing.max_instances
    error_message = "0 <= min_instances <= max_instances and max_instances >= 1."
  }
}

variable "source_archive" {
  description = "Uploaded source zip: bucket and object name (name objects by content hash so that only changed code redeploys)."
  type = object({
    bucket = string
    object = string
  })
  nullable = false
  validation {
    condition     = endswith(var.source_archive.object, ".zip")
    error_message = "The source object must be a .zip archive."
  }
}
