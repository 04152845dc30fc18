"""Topics, dead-letter topics and push subscriptions on the Pub/Sub emulator, as Terraform builds them in the
cloud, except that each stage topic is split into partition topics (docs/ARCHITECTURE.md: the emulator has
at most two pushes in flight per subscription)."""

from __future__ import annotations

from dataclasses import dataclass

from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

from triage.settings import dead_letter_topic


@dataclass(frozen=True)
class PushPolicy:
    max_delivery_attempts: int = 5
    min_backoff_s: int = 1
    max_backoff_s: int = 10
    ack_deadline_s: int = 60

    def retry(self) -> dict:
        return {
            "minimum_backoff": duration_pb2.Duration(seconds=self.min_backoff_s),
            "maximum_backoff": duration_pb2.Duration(seconds=self.max_backoff_s),
        }


def partition_topics(topic: str, partitions: int) -> list[str]:
    """Must agree with `triage.queue.Queue.partition_topic`."""
    return [topic] if partitions == 1 else [f"{topic}-p{k}" for k in range(partitions)]


def create_topology(
    project: str,
    endpoints: dict[str, str],
    partitions: int,
    policy: PushPolicy | None = None,
    push: bool = True,
) -> list[str]:
    """`endpoints` maps stage topic → base URL of the function consuming it. Returns subscription paths.

    Every partition's push subscription dead-letters into the stage's one DLQ topic, whose own push
    subscription (retries, no dead-letter policy) feeds the same function.
    """
    policy = policy or PushPolicy()
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    created = []
    with subscriber:

        def push(subscription: str, topic: str, base_url: str, dead_letter: str | None) -> None:
            request = {
                "name": subscriber.subscription_path(project, subscription),
                "topic": publisher.topic_path(project, topic),
                "push_config": {"push_endpoint": f"{base_url}/projects/{project}/topics/{topic}"},
                "ack_deadline_seconds": policy.ack_deadline_s,
                "retry_policy": policy.retry(),
            }
            if dead_letter:
                request["dead_letter_policy"] = {
                    "dead_letter_topic": publisher.topic_path(project, dead_letter),
                    "max_delivery_attempts": policy.max_delivery_attempts,
                }
            created.append(subscriber.create_subscription(request=request).name)

        for stage_topic, base_url in endpoints.items():
            dlq = dead_letter_topic(stage_topic)
            for topic in [*partition_topics(stage_topic, partitions), dlq]:
                publisher.create_topic(name=publisher.topic_path(project, topic))
            if not push:
                continue
            for topic in partition_topics(stage_topic, partitions):
                push(f"{topic}-push", topic, base_url, dlq)
            push(f"{dlq}-push", dlq, base_url, None)
    return created
