# staging: prod-like configuration at a smaller scale. Secret values never go here.
project_id          = "my-triage-staging" # replace with the staging project id
region              = "europe-west1"
deletion_protection = false
log_level           = "INFO"

labels = {
  app = "triage"
  env = "staging"
}

firestore = {
  location_id            = "europe-west1"
  point_in_time_recovery = true
}

functions = {
  intake = {
    concurrency     = 16
    cpu             = "1"
    max_instances   = 5
    memory          = "512M"
    min_instances   = 0
    timeout_seconds = 60
  }
  classify = {
    concurrency     = 8
    cpu             = "1"
    max_instances   = 5
    memory          = "1Gi"
    min_instances   = 0
    timeout_seconds = 120
  }
  route = {
    concurrency     = 8
    cpu             = "1"
    max_instances   = 5
    memory          = "512M"
    min_instances   = 0
    timeout_seconds = 120
  }
}

classifier = {
  daily_budget_usd = 5
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
  max_instances = 2
  memory        = "512Mi"
  min_instances = 1
  public        = true
}
