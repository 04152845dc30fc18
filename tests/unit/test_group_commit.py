from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from triage.group_commit import GroupCommitter


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
