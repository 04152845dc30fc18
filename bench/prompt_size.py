"""Prompt size of the Gemini request, measured on the real SDK's request body for 200 public test tickets.

    .venv/bin/python -m bench prompt_size

Tokens are counted as characters / 4 of all prompt text (system instruction + user content): no Gemini
tokenizer is available offline. The JSON response schema is reported separately (if the API counts it as
input, add it). The Gemini stub records each request body exactly as google-genai sent it.
"""

from __future__ import annotations

import csv
import gzip
import json
import statistics
from pathlib import Path

from bench.common import print_table, write_result
from devstack.stubs.gemini import GeminiStub, prompt_text
from triage.classify.base import TicketText
from triage.classify.gemini import GeminiClassifier, build_client
from triage.config import load_config
from triage.pricing import load_prices

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "it-service-tickets" / "tickets.csv.gz"
SAMPLE = 200


def test_tickets(n: int) -> list[str]:
    with gzip.open(DATA, "rt", encoding="utf-8", newline="") as fh:
        rows = [row["text"] for row in csv.DictReader(fh) if row["split"] == "test"]
    step = len(rows) // n
    return rows[::step][:n]  # an even spread, deterministic


def run() -> dict:
    config = load_config(ROOT / "config")
    prices = load_prices(ROOT / "config" / "pricing.yaml")
    with GeminiStub(api_key="bench") as stub:
        client = build_client("bench", stub.url, timeout_s=10)
        classifier = GeminiClassifier(client, config.triage, config.triage.classifier.llm, prices)
        for text in test_tickets(SAMPLE):
            title, _, _rest = text.partition(" ")  # the dataset joins subject and body; split off a title
            classifier.classify(TicketText(title[:80] or text[:80], text, "medium"))
        sizes = [len(prompt_text(r.json)) // 4 for r in stub.requests]
        system = (
            len(
                prompt_text({"systemInstruction": stub.requests[0].json["systemInstruction"], "contents": []})
            )
            // 4
        )
        schema = len(json.dumps(stub.requests[0].json["generationConfig"]["responseSchema"])) // 4
    ordered = sorted(sizes)
    figures = {
        "tickets": len(sizes),
        "tokenizer": "characters/4 (no offline Gemini tokenizer)",
        "median_input_tokens": statistics.median(sizes),
        "p90_input_tokens": ordered[int(0.9 * (len(ordered) - 1))],
        "max_input_tokens": ordered[-1],
        "system_instruction_tokens": system,
        "response_schema_tokens_if_counted": schema,
    }
    print_table("Gemini prompt size (real SDK request bodies, 200 public test tickets)", [figures])
    write_result("prompt_size", "make bench  # .venv/bin/python -m bench prompt_size", figures)
    return figures
