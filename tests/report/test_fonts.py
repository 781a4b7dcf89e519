from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reportlab.platypus import Paragraph

from ganad_clinic.report.fonts import printable, report_fonts


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
