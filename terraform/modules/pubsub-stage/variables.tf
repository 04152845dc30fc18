variable "ack_deadline_seconds" {
  description = "Ack deadline of both push subscriptions; set it to the function timeout (Pub/Sub waits that long for the push response)."
  type        = number
  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "Pub/Sub ack deadlines are between 10 and 600 seconds, so the function timeout must be at most 600."
  }
}

variable "dead_letter_retention" {
  description = "Message retention on the dead-letter topic, so dead letters can be replayed with a seek."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention))
    error_message = "A duration in seconds, e.g. 604800s."
  }
}

variable "labels" {
  description = "Resource labels."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "max_delivery_attempts" {
  description = "Push attempts before a message is forwarded to the dead-letter topic."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "message_retention_duration" {
  description = "How long the work subscription keeps unacknowledged messages."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration))
    error_message = "A duration in seconds, e.g. 604800s."
  }
}

variable "name" {
  description = "Work topic name; the dead-letter topic is NAME-dlq, the subscriptions NAME-push and NAME-dlq-push."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-_.~+%]{2,240}$", var.name))
    error_message = "A valid Pub/Sub topic name (3-241 characters, starting with a letter)."
  }
}

variable "project_id" {
  description = "Project holding the topics and subscriptions."
  type        = string
}

variable "project_number" {
  description = "Project number, used to name the Pub/Sub service agent (service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]+$", var.project_number))
    error_message = "The project number is digits only."
  }
}

variable "publishers" {
  description = "Members granted roles/pubsub.publisher on the work topic, keyed by a static name."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "push_endpoint" {
  description = "Base HTTPS URI of the stage's function; both subscriptions push to URI/projects/PROJECT/topics/TOPIC and use URI as OIDC audience."
  type        = string
  validation {
    condition     = startswith(var.push_endpoint, "https://")
    error_message = "Push endpoints must be https:// URIs."
  }
}

variable "push_service_account_email" {
  description = "Service account whose OIDC token authenticates every push (needs roles/run.invoker on the function)."
  type        = string
}

variable "retry_policy" {
  description = "Exponential backoff between push attempts, on both subscriptions."
  type = object({
    maximum_backoff = optional(string, "600s")
    minimum_backoff = optional(string, "10s")
  })
  default  = {}
  nullable = false
  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_policy.minimum_backoff)) && can(regex("^[0-9]+s$", var.retry_policy.maximum_backoff))
    error_message = "Backoffs are durations in seconds, e.g. 10s."
  }
}
