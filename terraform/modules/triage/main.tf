locals {
  topics = {
    classify = "triage-classify"
    route    = "triage-route"
  }
  # ENV_NAME => secret id, per consumer. Secret values are added with `gcloud secrets versions add`.
  secrets = {
    intake = {
      TRIAGE_WEBHOOK_SECRET = "triage-webhook-secret"
    }
    classify = {
      GEMINI_API_KEY = "triage-gemini-api-key"
    }
    route = {
      FRESHSERVICE_API_KEY           = "triage-freshservice-api-key"
      JIRA_API_TOKEN                 = "triage-jira-api-token"
      SLACK_REVIEW_WEBHOOK_URL       = "triage-slack-review-webhook-url"
      SLACK_WEBHOOK_URL              = "triage-slack-webhook-url"
      TRIAGE_OUTBOUND_WEBHOOK_SECRET = "triage-outbound-webhook-secret"
    }
    exporter = {
      EXPORTER_TOKEN = "triage-exporter-token"
    }
    reconcile = {}
  }
  secret_ids = distinct(flatten([for consumer in values(local.secrets) : values(consumer)]))
  # Consumers reference module.secrets so that the secrets exist before any grant or deploy.
  secret_env = {
    for consumer, env in local.secrets : consumer => {
      for name, id in env : name => module.secrets.secret_ids[id]
    }
  }
  common_env = {
    GOOGLE_CLOUD_PROJECT  = var.project_id
    TRIAGE_CLASSIFY_TOPIC = local.topics.classify
    TRIAGE_LOG_LEVEL      = var.log_level
    TRIAGE_ROUTE_TOPIC    = local.topics.route
  }
  source_bucket = google_storage_bucket.sources.name
}

data "google_project" "project" {
  project_id = var.project_id
}

module "secrets" {
  source     = "../secrets"
  project_id = var.project_id
  labels     = var.labels
  secret_ids = local.secret_ids
}

module "firestore" {
  source                 = "../firestore"
  project_id             = var.project_id
  location_id            = var.firestore.location_id
  deletion_protection    = var.deletion_protection
  point_in_time_recovery = var.firestore.point_in_time_recovery
  # No composite index: nothing queries; the exporter reads fixed documents (counters, pending, spend).
  indexes = {}
  ttl_fields = [
    { collection = "idempotency", field = "expire_at" },
    { collection = "classify_cache", field = "expire_at" },
  ]
  unindexed_fields = [
    { collection = "pending", field = "tickets" },
  ]
}

# HTTP entry point called by n8n: the only publicly invocable function. It still rejects any
# request without TRIAGE_WEBHOOK_SECRET (as bearer token or HMAC signature).
module "intake" {
  source                = "../function"
  project_id            = var.project_id
  region                = var.region
  name                  = "intake"
  description           = "triage intake: n8n webhook -> Firestore -> triage-classify"
  entry_point           = "intake"
  labels                = var.labels
  build_service_account = google_service_account.build.id
  service_account_id    = "triage-intake"
  source_archive = {
    bucket = local.source_bucket
    object = var.function_source_objects.intake
  }
  sizing                       = var.functions.intake
  ingress_settings             = "ALLOW_ALL"
  environment_variables        = merge(local.common_env, var.functions.intake.env)
  secret_environment_variables = local.secret_env.intake
  project_roles                = ["roles/datastore.user"]
  invokers = {
    public = "allUsers"
  }
  depends_on = [module.firestore]
}

module "classify" {
  source                = "../function"
  project_id            = var.project_id
  region                = var.region
  name                  = "classify"
  description           = "triage classify: triage-classify push -> Firestore -> triage-route"
  entry_point           = "classify"
  labels                = var.labels
  build_service_account = google_service_account.build.id
  service_account_id    = "triage-classify"
  source_archive = {
    bucket = local.source_bucket
    object = var.function_source_objects.classify
  }
  sizing           = var.functions.classify
  ingress_settings = "ALLOW_INTERNAL_ONLY"
  environment_variables = merge(
    local.common_env,
    {
      TRIAGE_CLASSIFIER_MODE      = var.classifier.mode
      TRIAGE_LLM_DAILY_BUDGET_USD = tostring(var.classifier.daily_budget_usd)
    },
    # Set only to override: config/triage.yaml is the one place that names the default model.
    { for name, value in { GEMINI_MODEL = var.classifier.gemini_model } : name => value if value != null },
    var.functions.classify.env
  )
  secret_environment_variables = local.secret_env.classify
  project_roles                = ["roles/datastore.user"]
  invokers = {
    pubsub-push = google_service_account.push.member
  }
  depends_on = [module.firestore]
}

module "route" {
  source                = "../function"
  project_id            = var.project_id
  region                = var.region
  name                  = "route"
  description           = "triage route: triage-route push -> Jira / Freshservice / Slack / webhook"
  entry_point           = "route"
  labels                = var.labels
  build_service_account = google_service_account.build.id
  service_account_id    = "triage-route"
  source_archive = {
    bucket = local.source_bucket
    object = var.function_source_objects.route
  }
  sizing           = var.functions.route
  ingress_settings = "ALLOW_INTERNAL_ONLY"
  environment_variables = merge(local.common_env, {
    FRESHSERVICE_BASE_URL = var.integrations.freshservice_base_url
    JIRA_BASE_URL         = var.integrations.jira_base_url
    JIRA_EMAIL            = var.integrations.jira_email
  }, var.functions.route.env)
  secret_environment_variables = local.secret_env.route
  project_roles                = ["roles/datastore.user"]
  invokers = {
    pubsub-push = google_service_account.push.member
  }
  depends_on = [module.firestore]
}

module "stage_classify" {
  source                     = "../pubsub-stage"
  project_id                 = var.project_id
  project_number             = data.google_project.project.number
  name                       = local.topics.classify
  labels                     = var.labels
  push_endpoint              = module.classify.uri
  push_service_account_email = google_service_account.push.email
  ack_deadline_seconds       = var.functions.classify.timeout_seconds
  max_delivery_attempts      = var.pubsub.max_delivery_attempts
  retry_policy = {
    minimum_backoff = var.pubsub.minimum_backoff
    maximum_backoff = var.pubsub.maximum_backoff
  }
  publishers = {
    intake    = module.intake.service_account_member
    reconcile = module.reconcile.service_account_member
  }
  depends_on = [google_service_account_iam_member.push_token_creator]
}

module "stage_route" {
  source                     = "../pubsub-stage"
  project_id                 = var.project_id
  project_number             = data.google_project.project.number
  name                       = local.topics.route
  labels                     = var.labels
  push_endpoint              = module.route.uri
  push_service_account_email = google_service_account.push.email
  ack_deadline_seconds       = var.functions.route.timeout_seconds
  max_delivery_attempts      = var.pubsub.max_delivery_attempts
  retry_policy = {
    minimum_backoff = var.pubsub.minimum_backoff
    maximum_backoff = var.pubsub.maximum_backoff
  }
  # classify hands classified tickets on; intake's review endpoint re-publishes reviewed ones; reconcile
  # hands parked ones back when their time has come.
  publishers = {
    classify  = module.classify.service_account_member
    intake    = module.intake.service_account_member
    reconcile = module.reconcile.service_account_member
  }
  depends_on = [google_service_account_iam_member.push_token_creator]
}

module "exporter" {
  source                       = "../exporter"
  project_id                   = var.project_id
  region                       = var.region
  labels                       = var.labels
  image                        = "${local.image_repository}/exporter:${var.exporter_image_tag}"
  deletion_protection          = var.deletion_protection
  public                       = var.exporter.public
  project_roles                = ["roles/datastore.viewer"]
  secret_environment_variables = local.secret_env.exporter
  sizing = {
    concurrency   = var.exporter.concurrency
    cpu           = var.exporter.cpu
    max_instances = var.exporter.max_instances
    memory        = var.exporter.memory
    min_instances = var.exporter.min_instances
  }
  depends_on = [module.firestore]
}
