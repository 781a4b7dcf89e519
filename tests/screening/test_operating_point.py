"""The operating point end to end in the service: what each score stores, a change of the lab's
rate applying from then on, and re-flagging earlier slides by appending score rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ganad_clinic.imaging.synthetic import crop_rng, draw_field, field_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.screening.reflag import reflag_slides
from ganad_clinic.store import ModelVersion, Store
from ganad_clinic.store.verify import verify_database
from tests.screening.helpers import TINY_CROP, Collector, wait_until
from tests.screening.test_service import config, running


def write_crop(path: Path, index: int, blast: bool) -> Path:
    Image.fromarray(generate_cell(crop_rng(5, blast, index), blast, size=TINY_CROP)).save(path)
    return path


def deliver(store: Store, inbox: Path, home: Path, names: list[str]) -> None:
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        wait_until(lambda: set(names) <= collector.names())
        assert service.wait_until_idle(30)


def judged(store: Store, name: str):
    (summary,) = [summary for summary in store.list_slides() if summary.slide.file_name == name]
    return summary.score, store.list_cells(summary.score.id)


def test_every_score_stores_its_p_values_and_the_rate_it_was_flagged_at(store: Store, model: ModelVersion,
                                                                      inbox: Path, home: Path,
                                                                      tiny_bundle: Path) -> None:
    calibration = load_bundle(tiny_bundle).calibration
    names = [write_crop(inbox / f"crop-{i}.png", i, blast=i % 2 == 1).name for i in range(4)]
    field, _ = draw_field(field_rng(5, 0), 160, 120, n_cells=3)
    Image.fromarray(field).save(inbox / "field.png")
    deliver(store, inbox, home, [*names, "field.png"])

    for name in [*names, "field.png"]:
        score, cells = judged(store, name)
        assert score.target_fpr == load_bundle(tiny_bundle).target_fpr  # no lab rate stated: the model's own
        assert score.calibration_n == calibration.n == 12
        m = len(cells)
        for cell in cells:
            assert cell.p_value == pytest.approx((1 + sum(c >= cell.score for c in calibration.scores)) / 13)
            # Bonferroni over the slide's cells, at the best level 12 calibration normals resolve
            assert cell.flagged == (cell.p_value <= max(score.target_fpr / m, 1 / 13) + 1e-12)
        assert score.p_value == pytest.approx(min(1.0, m * min(cell.p_value for cell in cells)))
        assert score.flagged == any(cell.flagged for cell in cells)
        assert score.kept_fpr == pytest.approx(min(1.0, m / 13))  # 12 normals cannot keep 5 %: said per score
        assert all(cell.score > score.threshold for cell in cells if cell.flagged)


def test_a_new_rate_applies_from_then_on_and_reflagging_appends_rows(store: Store, model: ModelVersion,
                                                                    inbox: Path, home: Path) -> None:
    deliver(store, inbox, home, [write_crop(inbox / f"early-{i}.png", i, blast=i == 0).name for i in range(3)])
    early = {name: judged(store, name)[0] for name in ("early-0.png", "early-1.png", "early-2.png")}

    setting = store.set_target_fpr(0.5, actor="Dr Lab", reason="pilot at a high rate")
    assert setting.target_fpr == 0.5 and store.target_fpr_setting() == setting
    deliver(store, inbox, home, [write_crop(inbox / "late.png", 7, blast=False).name])
    assert judged(store, "late.png")[0].target_fpr == 0.5
    for name, score in early.items():  # stored flags stay as they were
        assert judged(store, name)[0].id == score.id

    summary = reflag_slides(store, actor="Dr Lab")
    assert (summary.reflagged, summary.unchanged, summary.without_cells) == (3, 1, 0)
    for name, before in early.items():
        after, cells = judged(store, name)
        assert after.id > before.id and after.target_fpr == 0.5
        assert (after.score, after.l_d, after.model_version_id) == (before.score, before.l_d, before.model_version_id)
        assert after.flagged == any(cell.p_value <= 0.5 for cell in cells)
    assert reflag_slides(store, actor="Dr Lab").reflagged == 0  # already at this rate
    events = store.list_audit_events("operating_point.reflagged")
    assert [event.details["reflagged"] for event in events] == [3, 0]
    assert verify_database(store.url).ok


def test_reflagging_without_a_stated_rate_is_refused(store: Store, model: ModelVersion) -> None:
    with pytest.raises(Exception, match="has not stated a false-positive rate"):
        reflag_slides(store, actor="Dr Lab")


@pytest.mark.parametrize("rate, reason, message", [(0.0, "r", "strictly between"), (1.0, "r", "strictly between"),
                                                   (float("nan"), "r", "strictly between"), (0.05, " ", "reason")])
def test_a_bad_rate_or_a_missing_reason_is_refused(store: Store, rate: float, reason: str, message: str) -> None:
    with pytest.raises(Exception, match=message):
        store.set_target_fpr(rate, actor="Dr Lab", reason=reason)
    assert store.target_fpr_setting() is None
