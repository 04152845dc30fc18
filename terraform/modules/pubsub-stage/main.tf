locals {
  dead_letter_name = "${var.name}-dlq"
  push_base        = trimsuffix(var.push_endpoint, "/")
  # functions-framework derives the CloudEvent source from the request path, so push to
  # BASE/projects/PROJECT/topics/TOPIC rather than to BASE/.
  push_endpoints = {
    work        = "${local.push_base}/projects/${var.project_id}/topics/${var.name}"
    dead_letter = "${local.push_base}/projects/${var.project_id}/topics/${local.dead_letter_name}"
  }
  service_agent = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "work" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption is enough for ticket ids (message bodies carry only {"ticket_id"}); CMEK would add a KMS key per environment for no data-class reason.
  project = var.project_id
  name    = var.name
  labels  = var.labels
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption is enough for ticket ids (message bodies carry only {"ticket_id"}); CMEK would add a KMS key per environment for no data-class reason.
  project                    = var.project_id
  name                       = local.dead_letter_name
  labels                     = var.labels
  message_retention_duration = var.dead_letter_retention
}

# Work: every push carries an OIDC token, failed pushes back off and after
# max_delivery_attempts go to the dead-letter topic.
resource "google_pubsub_subscription" "work" {
  project                    = var.project_id
  name                       = "${var.name}-push"
  topic                      = google_pubsub_topic.work.id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = var.retry_policy.minimum_backoff
    maximum_backoff = var.retry_policy.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = local.push_endpoints.work
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = local.push_base
    }
  }
}

# Dead letters go back to the same stage's function, which records the ticket as failed
# (it recognises them by the CloudPubSubDeadLetterSourceDeliveryCount attribute). No
# dead-letter policy here: a dead letter that cannot be recorded keeps being retried.
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${local.dead_letter_name}-push"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = var.retry_policy.minimum_backoff
    maximum_backoff = var.retry_policy.maximum_backoff
  }

  push_config {
    push_endpoint = local.push_endpoints.dead_letter
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = local.push_base
    }
  }
}
