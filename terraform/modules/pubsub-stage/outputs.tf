output "dead_letter_subscription" {
  description = "Name of the subscription pushing dead letters back to the stage's function."
  value       = google_pubsub_subscription.dead_letter.name
}

output "dead_letter_topic" {
  description = "Name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "push_endpoints" {
  description = "Push endpoints of the work and dead-letter subscriptions."
  value       = local.push_endpoints
}

output "topic" {
  description = "Name of the work topic."
  value       = google_pubsub_topic.work.name
}

output "topic_id" {
  description = "Fully qualified id of the work topic."
  value       = google_pubsub_topic.work.id
}

output "work_subscription" {
  description = "Name of the work push subscription."
  value       = google_pubsub_subscription.work.name
}
