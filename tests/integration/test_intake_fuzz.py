"""Property-based fuzz of the real intake function against the emulators (issue 11, item 4).

Whatever arrives, intake never answers 5xx; every rejection is a 4xx JSON `{"error", "detail"}` and stores
nothing; storable tickets are accepted, also when a poison ticket is committed beside them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import SEED, counter, stored_state
from triage import runtime as runtime_module

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
SECRET = "fuzz-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
INT64_MAX = 2**63 - 1
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,  # the same cases on every run, so CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def client(project, pubsub_admin):
    publisher, _ = pubsub_admin
    publisher.create_topic(name=publisher.topic_path(project, "triage-classify"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_CLOUD_PROJECT", project)
        mp.setenv("TRIAGE_WEBHOOK_SECRET", SECRET)
        mp.delenv("TRIAGE_PUSH_PARTITIONS", raising=False)
        runtime_module.reset()
        app = create_app(
            target="intake", source=str(ROOT / "functions/intake/main.py"), signature_type="http"
        )
        yield app.test_client()
    runtime_module.reset()


@dataclass
class Case:
    body: bytes
    expect: str  # "accept", "reject" or "any" (only: never 5xx, and a rejection stores nothing)
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


# -- values -------------------------------------------------------------------------------------------

clean_text = st.text(max_size=12)  # hypothesis's default alphabet has no surrogates


def _clean_key(key: str) -> bool:
    key = key.strip()  # pydantic's str_strip_whitespace strips metadata's own keys too
    return bool(key) and not (key.startswith("__") and key.endswith("__"))


clean_keys = clean_text.filter(_clean_key)
clean_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    clean_text,
)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    not_a_list = children.filter(lambda v: not isinstance(v, list))  # no array directly in an array
    return st.one_of(st.dictionaries(clean_keys, children, max_size=4), st.lists(not_a_list, max_size=4))


clean_values = st.recursive(clean_scalars, _extend, max_leaves=12)
clean_metadata = st.dictionaries(clean_keys, clean_values, max_size=5)


def _nest(value: Any, levels: int, in_lists: bool) -> Any:
    for _ in range(levels):
        value = [{"k": value}] if in_lists else {"k": value}
    return value


surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
poison_values = st.one_of(
    st.integers(INT64_MAX + 1, 2**80),
    st.integers(-(2**80), -(2**63) - 1),
    st.builds(lambda s: f"ok{s}", surrogate),
    st.builds(lambda v: [[v]], clean_scalars),
    st.builds(lambda n: _nest(1, n, False), st.integers(10, 40)),
    st.builds(lambda n: _nest(1, n, True), st.integers(6, 20)),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),  # NaN literals (400) or 1e400-like
)
poison_keys = st.one_of(
    st.just(""), st.from_regex(r"\A__[a-z]{0,5}__\Z"), st.builds(lambda s: f"k{s}", surrogate)
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@st.composite
def clean_tickets(draw: st.DrawFn) -> dict[str, Any]:
    ticket = {
        "title": draw(st.text(min_size=1, max_size=40).filter(str.strip)),
        "description": draw(st.text(min_size=1, max_size=200).filter(str.strip)),
        "email": draw(st.sampled_from(["john.doe@company.com", "a.b+c@example.org", "ö@bücher.de"])),
        "priority": draw(st.sampled_from(["low", "medium", "high", "critical"])),
        "metadata": draw(clean_metadata),
    }
    if draw(st.booleans()):
        ticket["extra"] = draw(clean_values)  # unknown top-level fields are ignored
    return ticket


@st.composite
def poison_tickets(draw: st.DrawFn) -> dict[str, Any]:
    ticket = draw(clean_tickets())
    where = draw(st.sampled_from(["value", "key", "stripped_key", "title", "description"]))
    if where in ("title", "description"):
        ticket[where] += draw(surrogate)
        return ticket
    if where == "stripped_key":  # empty or reserved only once stripped (metadata's own keys only)
        ticket["metadata"] = {**ticket["metadata"], draw(st.sampled_from([" ", "\t\n", " __x__ "])): 1}
        return ticket
    key = draw(poison_keys) if where == "key" else "k"
    value = 1 if where == "key" else draw(poison_values)
    ticket["metadata"] = {**ticket["metadata"], "p": _nest({key: value}, draw(st.integers(0, 3)), False)}
    return ticket


def encode(ticket: dict[str, Any], ascii_only: bool = True) -> bytes:
    # allow_nan: NaN/Infinity literals, as a careless sender's json library writes them
    return json.dumps(ticket, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


def storable(ticket: dict[str, Any]) -> bool:
    """Independent of triage.model: the only reasons a clean ticket may still be refused."""
    meta = ticket["metadata"]
    return _depth(meta) <= 10 and len(json.dumps(meta, separators=(",", ":")).encode()) <= 8 * 1024


storable_tickets = clean_tickets().filter(storable)


# -- requests -----------------------------------------------------------------------------------------


@st.composite
def ticket_cases(draw: st.DrawFn) -> Case:
    if draw(st.integers(0, 2)) == 0:
        ticket = draw(poison_tickets())
        return Case(encode(ticket, draw(st.booleans())), "reject")
    ticket = draw(clean_tickets())
    return Case(encode(ticket, draw(st.booleans())), "accept" if storable(ticket) else "reject")


def _corrupt(body: bytes, at: int, junk: bytes) -> bytes:
    at %= len(body) + 1
    return body[:at] + junk + body[at:]


JUNK = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\\ud800", b"NaN", b"Infinity", b"[" * 50]


RAW_KINDS = ["bytes", "deep", "truncated", "corrupt", "utf16", "deep_string", "bignum", "big"]


@st.composite
def raw_cases(draw: st.DrawFn) -> Case:
    seed = json.dumps(draw(clean_tickets())).encode()
    kind = draw(st.sampled_from(RAW_KINDS))
    if kind == "bytes":
        body = draw(st.binary(max_size=300))
    elif kind == "deep":
        opener = draw(st.sampled_from(["[", '{"a":', '{"metadata":', "[{}, "]))
        body = (opener * draw(st.integers(20, 6000))).encode()
    elif kind == "truncated":
        body = seed[: draw(st.integers(0, len(seed) - 1))]
    elif kind == "corrupt":
        junk = draw(st.sampled_from(JUNK))
        body = _corrupt(seed, draw(st.integers(0)), junk)
    elif kind == "utf16":
        body = seed.decode().encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])))
    elif kind == "deep_string":  # brackets inside strings do not count as nesting
        body = json.dumps({**SEED, "description": "[" * draw(st.integers(1, 6000))}).encode()
    elif kind == "big":  # around the 64 KiB limit
        body = json.dumps({**SEED, "pad": "x" * draw(st.integers(65_400, 66_000))}).encode()
    else:
        body = seed[:-1] + b', "metadata": {"n": ' + b"9" * draw(st.integers(18, 6000)) + b"}}"
    return Case(body, "any")


latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
header_text = st.text(latin1, max_size=210)
CONTENT_TYPES = [
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/plain",
    "",
    "application/jsonx",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


@st.composite
def header_cases(draw: st.DrawFn) -> Case:
    case = draw(ticket_cases())
    case.expect = "any"
    case.content_type = draw(st.sampled_from(CONTENT_TYPES))
    case.headers = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Idempotency-Key": header_text,
                "Authorization": st.sampled_from(["", "Bearer nope", "Basic eA==", f"bearer {SECRET}"]),
                "X-Cloud-Trace-Context": header_text,
                "traceparent": header_text,
                "X-Triage-Timestamp": header_text,
                "X-Triage-Signature": header_text,
            },
        )
    )
    return case


requests = st.one_of(ticket_cases(), raw_cases(), header_cases())


# -- checks -------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What accepted requests may have stored; everything else in Firestore would be a leak."""

    ticket_ids: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)


def send(client: Any, case: Case, ledger: Ledger) -> int:
    headers = {**AUTH, **case.headers}
    response = client.post("/tickets", data=case.body, headers=headers, content_type=case.content_type)
    status, body = response.status_code, response.get_json(silent=True)
    ledger.statuses[status] += 1
    assert status < 500, (status, body)
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
        assert 400 <= status < 500
    else:
        assert status in (200, 202) and len(body["ticket_id"]) == 32, body
        ledger.ticket_ids.add(body["ticket_id"])
        if "Idempotency-Key" in headers:
            ledger.keys.add(hashlib.sha256(headers["Idempotency-Key"].encode()).hexdigest())
    if case.expect == "accept":
        assert status == 202, (status, body)
    elif case.expect == "reject":
        assert 400 <= status < 500, (status, body)
    return status


def assert_only_accepted_stored(db: Any, before: dict[str, Any], ledger: Ledger) -> None:
    after = stored_state(db)
    assert after["tickets"] == sorted(set(before["tickets"]) | ledger.ticket_ids)
    assert after["idempotency"] == sorted(set(before["idempotency"]) | ledger.keys)


def test_fuzzed_requests_never_get_5xx_and_rejections_store_nothing(client, db):
    before, ledger, started = stored_state(db), Ledger(), time.monotonic()
    received = counter(db, "triage_tickets_received")

    @FUZZ
    @given(case=requests)
    def one_request(case: Case) -> None:
        status = send(client, case, ledger)
        if status >= 400:
            # Cheap per-case check (the full stored_state is compared once at the end).
            assert counter(db, "triage_tickets_received") == received + len(ledger.ticket_ids)

    one_request()
    assert_only_accepted_stored(db, before, ledger)
    assert ledger.statuses.total() >= 1000
    assert {202, 400, 413, 415, 422} <= set(ledger.statuses)  # every branch was reached
    print(f"fuzz: {dict(ledger.statuses)} in {time.monotonic() - started:.1f}s")


def test_a_poison_ticket_never_fails_its_concurrent_neighbours(client, db):
    before, ledger = stored_state(db), Ledger()

    @settings(FUZZ, max_examples=40)
    @given(poison=poison_tickets(), neighbours=st.lists(storable_tickets, min_size=3, max_size=12))
    def burst(poison: dict[str, Any], neighbours: list[dict[str, Any]]) -> None:
        cases = [Case(encode(t), "accept") for t in neighbours]
        cases.insert(len(cases) // 2, Case(encode(poison), "reject"))
        with ThreadPoolExecutor(len(cases)) as pool:
            list(pool.map(lambda c: send(client.application.test_client(), c, ledger), cases))

    burst()
    assert_only_accepted_stored(db, before, ledger)
