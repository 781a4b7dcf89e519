"""Small builders shared by the store tests."""

from __future__ import annotations

from ganad_clinic.store import ModelVersion, RecordedSlide, Score, Store


def register_model(store: Store, version: str = "1.0.0") -> ModelVersion:
    return store.register_model_version(
        version, f"/models/{version}", f"sha-{version}", actor="tester", metrics={"auc": 0.9}
    )


def record(store: Store, path: str, sha256: str, folder: str = "/incoming") -> RecordedSlide:
    return store.record_slide(path, sha256, 1234, folder, width=640, height=480)


def add_score(store: Store, slide_id: int, model_id: int, score: float = 0.5, threshold: float = 0.7, *,
              station: str | None = None) -> Score:
    return store.add_score(
        slide_id,
        model_id,
        score=score,
        l_d=0.1,
        l_r=0.2,
        l_l=0.3,
        threshold=threshold,
        flagged=score > threshold,
        duration_seconds=0.25,
        station=station,
    )
