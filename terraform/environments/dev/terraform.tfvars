# dev: small, cheap, disposable. Secret values never go here (see docs/DEPLOY.md).
project_id          = "my-triage-dev" # replace with the dev project id
region              = "europe-west1"
deletion_protection = false
log_level           = "DEBUG"

labels = {
  app = "triage"
  env = "dev"
}

firestore = {
  location_id            = "europe-west1"
  point_in_time_recovery = false
}

functions = {
  intake = {
    concurrency     = 16
    cpu             = "1"
    max_instances   = 3
    memory          = "512M"
    min_instances   = 0
    timeout_seconds = 60
  }
  classify = {
    concurrency     = 4
    cpu             = "1"
    max_instances   = 3
    memory          = "1Gi"
    min_instances   = 0
    timeout_seconds = 120
  }
  route = {
    concurrency     = 4
    cpu             = "1"
    max_instances   = 3
    memory          = "512M"
    min_instances   = 0
    timeout_seconds = 120
  }
}

classifier = {
  daily_budget_usd = 1
  mode             = "hybrid"
}

integrations = {
  freshservice_base_url = ""
  jira_base_url         = ""
  jira_email            = ""
}

pubsub = {
  max_delivery_attempts = 5
  maximum_backoff       = "600s"
  minimum_backoff       = "10s"
}

exporter = {
  concurrency   = 8
  cpu           = "1"
  max_instances = 1
  memory        = "512Mi"
  min_instances = 1
  public        = true
}
