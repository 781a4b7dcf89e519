"""Several writers at once, in threads of one process and in separate processes, lose nothing
and raise nothing: SQLite's single write lock is taken up front and waited for, never reported.
Each thread writer makes WRITES_PER_WRITER transactions (a slide, then its score)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ganad_clinic.store import Store, open_store
from ganad_clinic.store.verify import verify_database

from .helpers import add_score, record, register_model

WRITES_PER_WRITER = 200


def _write_audit_events(url: str, actor: str, start: threading.Barrier) -> None:
    start.wait(timeout=60)
    with open_store(url) as store:
        for number in range(WRITES_PER_WRITER):
            store.audit(actor, "test.write", {"number": number})


def test_threads_write_concurrently_while_a_reader_reads(store: Store) -> None:
    writers = 2
    start = threading.Barrier(writers + 1)
    errors: list[BaseException] = []
    model = register_model(store)

    def write(number: int) -> None:
        try:
            start.wait(timeout=30)
            for index in range(WRITES_PER_WRITER // 2):
                slide = record(store, f"/in/{number}-{index}.png", f"{number}-{index}").slide
                add_score(store, slide.id, model.id)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    def read() -> None:
        try:
            start.wait(timeout=30)
            while any(thread.is_alive() for thread in threads):
                store.list_slides(flagged_only=True)
                time.sleep(0.01)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    reader = threading.Thread(target=read)
    for thread in [*threads, reader]:
        thread.start()
    for thread in [*threads, reader]:
        thread.join(timeout=120)

    assert errors == []
    summaries = store.list_slides()
    assert len(summaries) == writers * WRITES_PER_WRITER // 2
    assert all(summary.score is not None for summary in summaries)
    assert store.list_pending_slides() == []


def test_processes_create_and_write_concurrently(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both processes start on a new database: one migrates it while the other waits, then both write."""
    # A spawned child imports this module by its name; make the folder above its package importable.
    monkeypatch.syspath_prepend(str(Path(__file__).parents[__name__.count(".")]))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    processes = [
        context.Process(target=_write_audit_events, args=(db_url, f"process-{number}", start))
        for number in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)

    assert [process.exitcode for process in processes] == [0, 0]
    with open_store(db_url) as store:
        events = store.list_audit_events("test.write")
        assert store.integrity_check() == []
    assert verify_database(db_url).problems == []  # one chain, not forked by the two writers
    assert Counter(event.actor for event in events) == {
        "process-0": WRITES_PER_WRITER,
        "process-1": WRITES_PER_WRITER,
    }
