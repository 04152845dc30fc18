from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from unittest.mock import MagicMock

import pytest
from google.api_core import exceptions as gexc

from triage.group_commit import GroupCommitter
from triage.store import TicketStore


def test_concurrent_submissions_are_committed_in_groups_with_their_own_results():
    groups: list[list[int]] = []
    gate = threading.Event()

    def commit_many(items: list[int]) -> list[int | Exception]:
        gate.wait(1)  # hold the first commit so that the others queue up behind it
        groups.append(items)
        return [ValueError(f"bad {i}") if i == 7 else i * 10 for i in items]

    committer = GroupCommitter(commit_many, max_group=50, committers=1)

    def submit(i: int) -> int | str:
        try:
            return committer.submit(i)
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(submit, i) for i in range(20)]
        gate.set()
        results = [f.result() for f in futures]
    assert results == [i * 10 if i != 7 else "bad 7" for i in range(20)]
    assert sum(len(g) for g in groups) == 20 and len(groups) < 20


def test_a_failed_commit_fails_every_item_of_its_group():
    committer = GroupCommitter(lambda items: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.raises(ConnectionError):
        committer.submit(1)


def test_a_lone_item_is_committed_without_waiting():
    committer = GroupCommitter(lambda items: [len(items)])
    assert committer.submit("x") == 1


def test_a_wrong_number_of_results_fails_the_group_but_not_the_committer():
    calls: list[list[int]] = []

    def commit_many(items: list[int]) -> list[int | Exception]:
        calls.append(items)
        return [] if len(calls) == 1 else items  # the first commit is broken

    committer = GroupCommitter(commit_many, committers=1)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        committer.submit(1)
    assert committer.submit(2) == 2  # the committer thread survived


def _entry(n: int) -> tuple[dict, None]:
    return {"id": f"t{n}", "created_at": datetime(2026, 1, 1, tzinfo=UTC)}, None


def _store_whose_commits_raise(error: Exception) -> tuple[TicketStore, MagicMock]:
    db = MagicMock()
    db.batch.return_value.commit.side_effect = error
    return TicketStore(db, shards=2), db


def test_a_refused_group_commit_is_retried_entry_by_entry():
    """A document Firestore refuses fails the whole commit; each entry alone shows which one it was."""
    store, db = _store_whose_commits_raise(gexc.InvalidArgument("bad field"))
    results = store.create_many([_entry(n) for n in range(3)])
    assert all(isinstance(r, gexc.InvalidArgument) for r in results)
    assert db.batch.call_count == 1 + 3


def test_an_unreachable_firestore_fails_the_group_once_without_retrying_each_entry():
    store, db = _store_whose_commits_raise(gexc.ServiceUnavailable("down"))
    results = store.create_many([_entry(n) for n in range(3)])
    assert all(isinstance(r, gexc.ServiceUnavailable) for r in results)
    assert db.batch.call_count == 1


def test_an_entry_the_client_cannot_encode_stays_out_of_the_group_commit():
    store, db = _store_whose_commits_raise(None)
    batch = db.batch.return_value
    batch.commit.side_effect = None
    batch.create.side_effect = lambda ref, doc: _raise_if(doc.get("poison"))
    entries = [_entry(0), ({**_entry(1)[0], "poison": True}, None), _entry(2)]
    results = store.create_many(entries)
    assert isinstance(results[1], ValueError)
    assert [r.ticket_id for r in (results[0], results[2])] == ["t0", "t2"]
    assert batch.commit.call_count == 1


def _raise_if(poison: bool) -> None:
    if poison:
        raise ValueError("Value out of range")
