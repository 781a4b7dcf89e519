"""Fonts for reports, and turning any text into safe Paragraph markup.

Reports print file names and notes exactly as they are, in any script, so text needs a font with
wide Unicode coverage, found without relying on what a fresh machine happens to have:

- DejaVu Sans (Latin, Greek, Cyrillic, Armenian, Georgian, Hebrew and Arabic in part, most symbols)
  from the system font folders or from a matplotlib installation when one is found; else
- Bitstream Vera Sans, which ships inside reportlab itself, so it is always there (Latin-1 and
  common punctuation; no Greek letters such as λ).
- Characters the main font lacks are set in the first fallback TrueType font that has them
  (Droid Sans Fallback or Arial Unicode when installed: CJK and more).
- Anything still uncovered is set in one of reportlab's built-in CID fonts (Hangul in a Korean
  one, everything else in STSong-Light). Those are not embedded: the PDF viewer supplies the
  glyphs (Acrobat does; poppler needs poppler-data), but the text layer always holds the exact
  characters, so copying and searching work. (A TrueType font's missing glyph would lose them.)

reportlab draws characters left to right in the order given, so Hebrew and Arabic would print
mirrored. Text with right-to-left characters is put in display order first (`visual`: the Unicode
bidirectional algorithm, by python-bidi), line by line; when the width it is set in is known it
is wrapped first, since the display order of a line depends on where the line breaks. Arabic
letters print in their isolated forms, not joined: python-bidi reorders but does not shape, and
reportlab shapes only with uharfbuzz, which is not a dependency. The text layer then holds the
display order, so a copied Hebrew name reads reversed; the printed page is what counts here.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from bidi import get_display
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFError, TTFont

REGULAR = "GanadSans"
BOLD = "GanadSans-Bold"

_DEJAVU = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
_VERA = ("Vera.ttf", "VeraBd.ttf")
_SYSTEM_FONT_FOLDERS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    os.path.expanduser("~/Library/Fonts"),
    os.path.expanduser("~/.local/share/fonts"),
    os.path.join(os.environ.get("WINDIR", "C:\\Windows"), "Fonts"),
)
_FALLBACK_TTF_FILES = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    os.path.join(os.environ.get("WINDIR", "C:\\Windows"), "Fonts", "ARIALUNI.TTF"),
)
_KOREAN_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))
_KOREAN_CID_FONT = "HYSMyeongJo-Medium"
_OTHER_CID_FONT = "STSong-Light"
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_RIGHT_TO_LEFT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
"""Hebrew, Arabic, Syriac, Thaana, N'Ko, Samaritan, Mandaic and their presentation forms."""
_WRAP_SLACK = 0.97
"""Lines wrapped here are kept this much narrower than their width, so Paragraph never rewraps them."""


def printable(text: str) -> str:
    """`text` with what no PDF can hold replaced: lone surrogates (undecodable file-name bytes)
    and control characters become U+FFFD; line breaks stay."""
    return _UNPRINTABLE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))


def has_right_to_left(text: str) -> bool:
    return _RIGHT_TO_LEFT.search(text) is not None


def visual(text: str) -> str:
    """`text` in the order it is drawn: each line with right-to-left characters reordered by the
    Unicode bidirectional algorithm, its base direction taken from its first strong character
    (a Hebrew note reads right to left; a Latin file name with a Hebrew word stays left to right)."""
    return "\n".join(get_display(line) if has_right_to_left(line) else line for line in text.split("\n"))


def wrap_lines(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` in `font` at `size`: at spaces, and inside
    a word only when the word alone is wider (file names often have no spaces)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if stringWidth(candidate, font, size) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for character in word:
                if line and stringWidth(line + character, font, size) > width:
                    lines.append(line)
                    line = ""
                line += character
        lines.append(line)
    return lines


@dataclass(frozen=True)
class ReportFonts:
    """The registered report fonts and which characters each of them covers."""

    regular: str
    bold: str
    main_file: Path
    coverage: frozenset[int] = field(repr=False)
    fallbacks: tuple[tuple[str, frozenset[int]], ...] = field(repr=False)

    def font_for(self, character: str) -> str | None:
        """The font for a character the main font lacks; None when the main font has it."""
        code = ord(character)
        if code in self.coverage:
            return None
        for name, covered in self.fallbacks:
            if code in covered:
                return name
        is_korean = any(first <= code <= last for first, last in _KOREAN_RANGES)
        return _registered_cid(_KOREAN_CID_FONT if is_korean else _OTHER_CID_FONT)

    def markup(self, text: str, width: float | None = None, size: float = 9.0, bold: bool = False) -> str:
        """Paragraph markup that prints `text` literally: `<`, `&`, quotes and any script, right-to-left
        text in display order. Give the `width` (and font `size`, `bold`) a Paragraph sets it in when
        the text may wrap, so that text with right-to-left characters is wrapped before it is reordered."""
        text = printable(text)
        if has_right_to_left(text):
            if width is not None:
                wrap_font = self.bold if bold else self.regular
                text = "\n".join(wrap_lines(text, wrap_font, size, width * _WRAP_SLACK))
            text = visual(text)
        parts: list[str] = []
        run: list[str] = []
        run_font: str | None = None
        for character in text:
            font = None if character == "\n" else self.font_for(character)
            if font != run_font and run:
                parts.append(_markup_run("".join(run), run_font))
                run = []
            run_font = font
            run.append(character)
        if run:
            parts.append(_markup_run("".join(run), run_font))
        return "".join(parts)


def _markup_run(text: str, font: str | None) -> str:
    escaped = escape(text).replace("\n", "<br/>")
    return escaped if font is None else f'<font name="{font}">{escaped}</font>'


@cache
def report_fonts() -> ReportFonts:
    """Find and register the report fonts (once per process)."""
    regular, bold = _load_main_fonts()
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(bold)
    for bold, italic, name in ((0, 0, REGULAR), (1, 0, BOLD), (0, 1, REGULAR), (1, 1, BOLD)):
        addMapping(REGULAR, bold, italic, name)
    fallbacks = []
    for index, path in enumerate(_existing(_FALLBACK_TTF_FILES)):
        name = f"GanadFallback{index}"
        try:
            font = TTFont(name, str(path))
        except TTFError:
            continue
        pdfmetrics.registerFont(font)
        fallbacks.append((name, frozenset(font.face.charToGlyph)))
    return ReportFonts(REGULAR, BOLD, Path(regular.face.filename), frozenset(regular.face.charToGlyph),
                       tuple(fallbacks))


def _load_main_fonts() -> tuple[TTFont, TTFont]:
    *system, bundled = _main_font_files()
    for regular_file, bold_file in system:
        try:
            return TTFont(REGULAR, str(regular_file)), TTFont(BOLD, str(bold_file))
        except TTFError:
            continue  # a damaged system font: try the next, down to reportlab's own
    return TTFont(REGULAR, str(bundled[0])), TTFont(BOLD, str(bundled[1]))


def _main_font_files() -> list[tuple[Path, Path]]:
    """(regular, bold) candidates, best first: DejaVu Sans wherever this machine has it, then the
    Vera Sans that reportlab ships (always present)."""
    folders = [Path(folder) for folder in _SYSTEM_FONT_FOLDERS]
    matplotlib = importlib.util.find_spec("matplotlib")  # found, not imported
    if matplotlib is not None and matplotlib.origin:
        folders.append(Path(matplotlib.origin).parent / "mpl-data" / "fonts" / "ttf")
    candidates = [(folder / _DEJAVU[0], folder / _DEJAVU[1]) for folder in folders]
    found = [(regular, bold) for regular, bold in candidates if regular.is_file() and bold.is_file()]
    reportlab_fonts = Path(reportlab.__file__).parent / "fonts"
    return [*found, (reportlab_fonts / _VERA[0], reportlab_fonts / _VERA[1])]


def _existing(paths: tuple[str, ...]) -> list[Path]:
    return [Path(path) for path in paths if Path(path).is_file()]


@cache
def _registered_cid(name: str) -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(name))
    return name
