# prod: delete protection on, multi-region Firestore with point-in-time recovery, higher
# limits, one warm intake instance. Secret values never go here.
project_id          = "my-triage-prod" # replace with the prod project id
region              = "europe-west1"
deletion_protection = true
log_level           = "INFO"

labels = {
  app = "triage"
  env = "prod"
}

firestore = {
  location_id            = "eur3"
  point_in_time_recovery = true
}

functions = {
  intake = {
    concurrency     = 32
    cpu             = "1"
    max_instances   = 20
    memory          = "512M"
    min_instances   = 1
    timeout_seconds = 60
  }
  classify = {
    concurrency     = 16
    cpu             = "1"
    max_instances   = 20
    memory          = "1Gi"
    min_instances   = 0
    timeout_seconds = 120
  }
  route = {
    concurrency     = 8
    cpu             = "1"
    max_instances   = 20
    memory          = "512M"
    min_instances   = 0
    timeout_seconds = 120
  }
}

classifier = {
  daily_budget_usd = 20
  mode             = "hybrid"
}

integrations = {
  freshservice_base_url = ""
  jira_base_url         = ""
  jira_email            = ""
}

pubsub = {
  max_delivery_attempts = 10
  maximum_backoff       = "600s"
  minimum_backoff       = "10s"
}

exporter = {
  concurrency   = 8
  cpu           = "1"
  max_instances = 3
  memory        = "512Mi"
  min_instances = 1
  public        = true
}
