"""Publishing ticket work to the stage topics."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


def partition_of(ticket_id: str, partitions: int) -> int:
    digest = hashlib.blake2b(ticket_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass
class Queue:
    publisher: Any
    project: str
    partitions: int = 1
    timeout_s: float = 10.0

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def partition_topic(self, topic: str, ticket_id: str) -> str:
        """Locally a stage topic is split into partitions (docs/ARCHITECTURE.md); in the cloud it is one."""
        if self.partitions == 1:
            return topic
        return f"{topic}-p{partition_of(ticket_id, self.partitions)}"

    def publish(self, topic: str, ticket_id: str, trace: str | None = None, **attributes: str) -> str:
        """Publishes and waits for the server's ack, so a caller that returns success has really enqueued."""
        attrs = {"ticket_id": ticket_id, **attributes}
        if trace:
            attrs["trace"] = trace
        from google.pubsub_v1.types import PubsubMessage

        message = PubsubMessage(data=json.dumps({"ticket_id": ticket_id}).encode(), attributes=attrs)
        path = self.topic_path(self.partition_topic(topic, ticket_id))
        response = self.publisher.publish(topic=path, messages=[message], timeout=self.timeout_s)
        return response.message_ids[0]

    def topic_exists(self, topic: str) -> bool:
        path = self.topic_path(self.partition_topic(topic, "healthz"))
        self.publisher.get_topic(request={"topic": path}, retry=None, timeout=3)
        return True
