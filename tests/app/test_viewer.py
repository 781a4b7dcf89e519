"""The viewer says in words what a technician must know about a score besides its number."""

from __future__ import annotations

from pathlib import Path

from ganad_clinic.screening.ingest import file_sha256
from tests.app.builders import write_cells


def test_a_scores_warning_is_shown_beside_the_slide(make_window, store, model, tmp_path: Path, qtbot):
    (path,) = write_cells(tmp_path / "slides", 1)
    recorded = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent)
    store.add_score(recorded.slide.id, model.id, score=3.0, l_d=1.0, l_r=2.0, l_l=0.5, threshold=1.0, flagged=True,
                    duration_seconds=0.01, warning="page 1 of 3 scored; the other pages were not screened")
    window = make_window()
    assert window.queue.current_summary().slide.id == recorded.slide.id
    qtbot.waitUntil(lambda: "page 1 of 3 scored" in window.viewer.status.text(), timeout=10_000)
    assert "<b>Caution:</b> page 1 of 3 scored; the other pages were not screened." in window.viewer.status.text()
