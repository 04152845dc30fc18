provider "google" {
  project = var.project_id
  region  = var.region
}

module "triage" {
  source                  = "../../modules/triage"
  project_id              = var.project_id
  region                  = var.region
  labels                  = var.labels
  deletion_protection     = var.deletion_protection
  firestore               = var.firestore
  function_source_objects = var.function_source_objects
  functions               = var.functions
  classifier              = var.classifier
  integrations            = var.integrations
  log_level               = var.log_level
  pubsub                  = var.pubsub
  exporter                = var.exporter
  exporter_image_tag      = var.exporter_image_tag
}
