from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Paragraph

from ganad_clinic.report.fonts import printable, report_fonts, visual, wrap_lines


def test_markup_characters_are_escaped() -> None:
    assert report_fonts().markup('<b>a & "q" \'s</b>') == '&lt;b&gt;a &amp; "q" \'s&lt;/b&gt;'


def test_the_main_font_covers_european_text() -> None:
    fonts = report_fonts()
    assert all(fonts.font_for(character) is None for character in "é ü ß Ω –")


def test_cjk_falls_back_to_another_font() -> None:
    fonts = report_fonts()
    fallback = fonts.font_for("漢")
    assert fallback is not None and fallback != fonts.regular
    assert fonts.markup("a漢b") == f'a<font name="{fallback}">漢</font>b'


def test_unprintable_characters_are_replaced_and_lines_kept() -> None:
    assert printable("a\x00b\udcffc\r\nd") == "a\ufffdb\ufffdc\nd"
    assert report_fonts().markup("one\ntwo") == "one<br/>two"


def test_any_text_makes_a_valid_paragraph() -> None:
    fonts = report_fonts()
    for text in ("<", "&", "</font>", "<br/>", "&amp;", "\x07", "\udcff", "漢<b>字"):
        Paragraph(fonts.markup(text)).wrap(100, 100)


VERA_ONLY_SCRIPT = """
import sys
import ganad_clinic.report.fonts as fonts
bundled = fonts._main_font_files()[-1]
fonts._main_font_files = lambda: [bundled]  # a machine without DejaVu Sans
from pypdf import PdfReader
from reportlab.platypus import Paragraph, SimpleDocTemplate
from reportlab.lib.styles import ParagraphStyle
chosen = fonts.report_fonts()
assert chosen.main_file.name == "Vera.ttf", chosen.main_file
text = sys.argv[2]
SimpleDocTemplate(sys.argv[1]).build([Paragraph(chosen.markup(text), ParagraphStyle("s", fontName=chosen.regular))])
print(PdfReader(sys.argv[1]).pages[0].extract_text().strip())
"""


def test_with_only_reportlabs_own_font_every_character_stays_in_the_text(tmp_path: Path) -> None:
    text = "é ü ß Ω – λ β Ж 漢 한 ไทย <&>"
    result = subprocess.run([sys.executable, "-c", VERA_ONLY_SCRIPT, str(tmp_path / "vera.pdf"), text],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == text


HEBREW = "שלום"
HEBREW_NOTE = " ".join(["גרעין", "גדול", "מאוד", "בתא", "הלבן", "ליד", "הקצה"] * 6)


def test_hebrew_is_drawn_in_display_order() -> None:
    fonts = report_fonts()
    assert fonts.markup(HEBREW) == HEBREW[::-1]  # reportlab draws left to right: the last letter first
    assert fonts.markup(f"scan {HEBREW} 12.png") == f"scan 12 {HEBREW[::-1]}.png"  # a Latin name stays LTR
    assert fonts.markup(f"{HEBREW} ok") == f"ok {HEBREW[::-1]}"  # a Hebrew line reads right to left


def test_wrapped_hebrew_reads_line_by_line_from_the_top() -> None:
    # Reordered as one line and then wrapped, the first printed line would hold the note's end.
    fonts = report_fonts()
    width = 120.0

    lines = fonts.markup(HEBREW_NOTE, width, 8).split("<br/>")

    assert len(lines) > 3
    assert " ".join(line[::-1] for line in lines) == HEBREW_NOTE
    assert all(stringWidth(line, fonts.regular, 8) <= width for line in lines)


def test_a_long_hebrew_word_is_cut_where_it_must_wrap() -> None:
    name = "דגימה_של_מטופל_12345_שלב_ב_ועוד_טקסט_ארוך.tif"
    lines = wrap_lines(name, report_fonts().regular, 7.5, 60)
    assert len(lines) > 1 and "".join(lines) == name


def test_the_report_font_has_hebrew_and_arabic_letters() -> None:
    fonts = report_fonts()
    if "DejaVu" not in fonts.main_file.name:
        pytest.skip("DejaVu Sans is not installed: reportlab's Vera has neither script")
    letters = [chr(code) for code in range(0x05D0, 0x05EB)] + [chr(code) for code in range(0x0621, 0x063B)]
    assert all(fonts.font_for(letter) is None for letter in letters)


def test_arabic_is_reordered_but_not_joined() -> None:
    # Documented limitation: python-bidi reorders; the letters keep their isolated forms.
    word = "سلام"
    assert report_fonts().markup(word) == word[::-1]
    assert visual(f"{word}\nabc") == f"{word[::-1]}\nabc"
