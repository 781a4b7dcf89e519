from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader
from reportlab.pdfgen.textobject import PDFTextObject

from ganad_clinic.report import build_report
from ganad_clinic.report.content import gather_content
from ganad_clinic.store import Store

from .builders import SlideFiles, record_scored
from .conftest import GRID_TILING, MARKUP_NAME, MARKUP_NOTE, UNICODE_NAME, World


def pdf_text(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def test_the_report_states_the_figures_of_the_database(world: World, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    summary = build_report(world.store, out, lab="Haematology Lab 3", operator="Jane Doe")
    counts = gather_content(world.store).counts
    pages = pdf_text(out)
    text = "\n".join(pages)

    assert summary.pages == len(pages) and summary.counts == counts
    assert summary.model_versions == ("1.0.0",)
    for needle in ("Haematology Lab 3", "Jane Doe", "received up to", "screening aid, not a diagnosis",
                   world.model.sha256[:12], "95th percentile of 20 validation-normal scores", "λ = 0.8", "β = 1",
                   "threshold 0.7", "Sign-off", "Rejected files (1)", "the file is empty (0 bytes)"):
        assert needle in text, needle
    expected = {"Slides received": 10, "Scored": 8, "Flagged": 4, "Rejected (not scorable)": 1, "Not scored yet": 1,
                "Reviewed": 5, "Flags confirmed": 1, "Flags overruled": 1, "Not flagged, but anomalous on review": 1}
    for label, number in expected.items():
        assert re.search(rf"^\s*{re.escape(label)}\n{number}$", pages[0], re.MULTILINE), label
    assert re.search(r"^Flags awaiting review\n2 \(of which 1 marked for a second read\)$", pages[0], re.MULTILINE)
    assert f"All slides ({counts.slides})" in text and f"Flagged slides ({counts.flagged})" in text
    # page 1 in a technician's words; the digest, the threshold rule and the formula at the end, for checking
    assert "Printed by" in pages[0] and "Flags a slide when" in pages[0]
    assert world.model.sha256[:12] not in pages[0] and "Score A(x)" not in pages[0]
    assert "Model details, for checking" in pages[-1] and world.model.sha256[:12] in pages[-1]
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page


def test_every_slide_is_listed_with_its_score_and_review(world: World, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    build_report(world.store, out)
    text = "\n".join(pdf_text(out))
    for row in gather_content(world.store).rows:
        assert row.file_name in text
        if row.score is not None:
            assert f"{row.score:.4g}" in text
    assert text.count("anomaly confirmed") >= 2 and "second read" in text
    assert text.count("Scored by") == 1 and f"Scored by {GRID_TILING}" in " ".join(text.split())


def test_markup_and_unicode_print_as_they_are(world: World, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    build_report(world.store, out, lab='Lab <"Nord"> & Süd – 漢', operator="Zoë ß Ω")
    text = "\n".join(pdf_text(out))
    for needle in (MARKUP_NAME, UNICODE_NAME, MARKUP_NOTE, "tech <a>", "Dr. Ünal", 'Lab <"Nord"> & Süd – 漢',
                   "Zoë ß Ω", "broken & <bad>.jpg"):
        assert needle in text, needle


def test_an_empty_period_gives_a_valid_report_that_says_so(store: Store, model: object, tmp_path: Path) -> None:
    out = tmp_path / "empty.pdf"
    summary = build_report(store, out, lab="Lab", csv_path=tmp_path / "empty.csv")
    assert summary.is_empty and summary.pages == 1
    text = "\n".join(pdf_text(out))
    assert "This report is empty" in text and "Sign-off" in text
    assert re.search(r"^\s*Slides received\n0$", text, re.MULTILINE)
    assert (tmp_path / "empty.csv").read_text(encoding="utf-8-sig").count("\n") == 1  # the header only


def test_missing_image_files_print_placeholders(world: World, tmp_path: Path) -> None:
    shutil.rmtree(world.files.inbox)
    out = tmp_path / "report.pdf"
    build_report(world.store, out)
    text = "\n".join(pdf_text(out))
    assert text.count("slide image") == 4  # every flagged slide lost its image
    assert text.count("heat map") >= 1 and "not found" in text


def test_images_are_embedded_as_small_thumbnails(store: Store, model: object, tmp_path: Path) -> None:
    files = SlideFiles(tmp_path / "data")
    big, heatmap = files.inbox / "big.png", files.heatmaps / "big.png"
    rng = np.random.default_rng(0)
    for path in (big, heatmap):
        Image.fromarray(rng.integers(0, 255, (2400, 3000, 3), dtype=np.uint8)).save(path)
    record_scored(store, model, big, heatmap, 0.9)  # type: ignore[arg-type]
    out = tmp_path / "report.pdf"
    build_report(store, out)
    images = [image for page in PdfReader(out).pages for image in page.images]
    assert len(images) == 2
    assert all(max(image.image.size) <= 320 for image in images)
    assert out.stat().st_size < big.stat().st_size / 20


def test_long_tables_repeat_their_header_on_every_page(store: Store, model: object, tmp_path: Path) -> None:
    for index in range(150):
        slide = store.record_slide(f"/in/{'long name ' * 8}{index}.png", f"sha{index}", 1, "/in").slide
        store.add_score(slide.id, model.id, score=0.1, l_d=0, l_r=0, l_l=0, threshold=0.7, flagged=False,  # type: ignore[attr-defined]
                        duration_seconds=0)
    out = tmp_path / "report.pdf"
    summary = build_report(store, out)
    pages = pdf_text(out)
    assert summary.pages >= 4
    table_pages = [page for page in pages if ".png" in page]
    assert len(table_pages) >= 3
    assert all("File\nReceived\nScore\nFlag\nReview\nReviewer" in page for page in table_pages)


def test_pages_render_and_are_not_blank(world: World, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: cannot render the PDF to check its pages")
    out = tmp_path / "report.pdf"
    summary = build_report(world.store, out, lab="Lab")
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(out), str(tmp_path / "page")], check=True,
                   capture_output=True)
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == summary.pages
    for picture in rendered:
        gray = np.asarray(Image.open(picture).convert("L"), dtype=np.float64)
        dark = (gray < 200).mean()
        assert 0.005 < dark < 0.6, f"{picture.name}: {dark:.1%} of its pixels are ink"


def test_extreme_text_never_breaks_the_layout(store: Store, model: object, tmp_path: Path) -> None:
    files = SlideFiles(tmp_path / "data")
    path, heatmap = files.slide("n" * 200 + ".png", blast=True)
    slide_id = record_scored(store, model, path, heatmap, 0.95)  # type: ignore[arg-type]
    store.add_review(slide_id, "r" * 128, "anomaly_confirmed", "x" * 20_000 + " <&> " + "漢" * 3_000)
    rejected = store.record_slide(files.inbox / ("é" * 120), "bad", 0, files.inbox).slide
    store.mark_rejected(rejected.id, "reason " * 2_000)
    out = tmp_path / "report.pdf"
    summary = build_report(store, out, lab="L" * 5_000, operator="o " * 3_000)
    text = "".join(pdf_text(out)).replace("\n", "")
    assert summary.pages > 3
    assert "x" * 1_000 in text and "漢" * 500 in text  # the whole note, wrapped across pages


def drawn_strings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every string reportlab puts into the PDF's text, in the order it is given: the order drawn
    (pypdf's text extraction would reorder right-to-left text itself)."""
    drawn: list[str] = []
    real = PDFTextObject._formatText

    def recording(self: PDFTextObject, text: str) -> str:
        drawn.append(text)
        return real(self, text)

    monkeypatch.setattr(PDFTextObject, "_formatText", recording)
    return drawn


def test_hebrew_names_notes_lab_and_operator_are_drawn_right_to_left(store: Store, model: object,
                                                                     tmp_path: Path, monkeypatch) -> None:
    name, note, lab, operator = "דגימה.png", "גרעין גדול", "מעבדה צפון", "דנה"
    files = SlideFiles(tmp_path / "data")
    path, heatmap = files.slide(name, blast=True)
    slide_id = record_scored(store, model, path, heatmap, 0.95)  # type: ignore[arg-type]
    store.add_review(slide_id, operator, "anomaly_confirmed", note)
    drawn = drawn_strings(monkeypatch)

    build_report(store, tmp_path / "report.pdf", lab=lab, operator=operator)

    text = " ".join(drawn)
    assert "png.המיגד" in text  # the extension at the left, as a Hebrew reader sees the name
    for words in (note, lab):
        assert " ".join(word[::-1] for word in reversed(words.split())) in text
    assert operator[::-1] in text
    assert name not in text and lab not in text and operator not in text  # never drawn mirrored


def test_a_scores_warning_is_shown_with_the_flagged_slide(store: Store, model: object, tmp_path: Path) -> None:
    files = SlideFiles(tmp_path / "data")
    path, heatmap = files.slide("stack.tif", blast=True)
    record_scored(store, model, path, heatmap, 0.95,  # type: ignore[arg-type]
                  warning="page 1 of 3 scored; the other pages were not screened")
    path, heatmap = files.slide("plain.tif", blast=True)
    record_scored(store, model, path, heatmap, 0.97)  # type: ignore[arg-type]
    out = tmp_path / "report.pdf"

    build_report(store, out)

    text = " ".join(" ".join(pdf_text(out)).split())
    assert text.count("Caution:") == 1
    assert "Caution: page 1 of 3 scored; the other pages were not screened" in text


def test_the_slides_table_puts_open_flags_first_with_fixed_precision_and_notes_in_a_closed_period(
        world: World, tmp_path: Path) -> None:
    from datetime import date, datetime

    from ganad_clinic.report.pdf import table_order
    from ganad_clinic.store import ReviewDecision

    printed = datetime(2030, 1, 2, 9, 30).astimezone()
    content = gather_content(world.store, since=date(2020, 1, 1), printed_at=printed)
    assert content.period == "2020-01-01 – 2030-01-02 09:30"  # an open period ends when the report is printed
    ordered = sorted(content.rows, key=table_order)
    groups = [table_order(row) for row in ordered]
    assert groups == sorted(groups) and groups[0] == 0 and 2 in groups
    assert all(row.flagged and row.decision in (None, ReviewDecision.SECOND_READ) for row in ordered
               if table_order(row) == 0)

    out = tmp_path / "report.pdf"
    build_report(world.store, out, since=date(2020, 1, 1))
    text = "\n".join(pdf_text(out))
    table = text[text.index("All slides ("):]
    words = " ".join(table.split())
    assert "staining artefact" in words and "missed by the model" in words  # the reviewers' notes
    scores = re.findall(r"\b\d+\.\d+\b", table.split("Rejected files")[0])
    assert scores and all(len(score.split(".")[1]) == 3 for score in scores if not score.startswith("20"))
