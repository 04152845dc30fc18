"""What the Gemini classifier tests share: shipped config and prices, a sample ticket, a sleep recorder."""

from __future__ import annotations

from pathlib import Path

from triage.classify.base import TicketText
from triage.config import load_config
from triage.pricing import load_prices

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "config")
PRICES = load_prices(ROOT / "config" / "pricing.yaml")
LLM = CONFIG.triage.classifier.llm
VPN = TicketText("VPN not connecting", "Since this morning the VPN client says the tunnel failed.", "high")


class Sleeps(list):
    """Records requested waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
