"""Write a PNG contact sheet of synthetic crops (normal rows, then blast rows) and one field.

Used to eyeball the synthetic generator and shown in the README:
    python training/contact_sheet.py [--out PNG] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ganad_clinic.imaging.synthetic import crop_rng, field_rng, generate_cell, generate_field

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "resources" / "readme" / "synthetic_contact_sheet.png"
COLUMNS = 4
ROWS_PER_CLASS = 2
TILE = 160
GAP = 4
LABEL_HEIGHT = 16


def build_sheet(seed: int) -> Image.Image:
    """Crops of each class under a label, then a field thumbnail that holds blasts, on white."""
    width = COLUMNS * TILE + (COLUMNS + 1) * GAP
    field_height = (width - 2 * GAP) * 3 // 4
    class_height = LABEL_HEIGHT + ROWS_PER_CLASS * (TILE + GAP)
    sheet = Image.new("RGB", (width, 2 * class_height + LABEL_HEIGHT + field_height + 2 * GAP), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()

    top = GAP
    for label, blast in (("normal (mature lymphocyte)", False), ("blast (lymphoblast)", True)):
        draw.text((GAP, top), label, fill="black", font=font)
        top += LABEL_HEIGHT
        for k in range(COLUMNS * ROWS_PER_CLASS):
            crop = generate_cell(crop_rng(seed, blast, k), blast)
            tile = Image.fromarray(crop).resize((TILE, TILE), Image.Resampling.LANCZOS)
            row, column = divmod(k, COLUMNS)
            sheet.paste(tile, (GAP + column * (TILE + GAP), top + row * (TILE + GAP)))
        top += ROWS_PER_CLASS * (TILE + GAP)

    field, has_blast = generate_field(field_rng(seed, 1), blast_fraction=0.5)
    caption = f"field (ALL-IDB1 style, {'holds blasts' if has_blast else 'normal'})"
    draw.text((GAP, top), caption, fill="black", font=font)
    thumbnail = Image.fromarray(field).resize((width - 2 * GAP, field_height), Image.Resampling.LANCZOS)
    sheet.paste(thumbnail, (GAP, top + LABEL_HEIGHT))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # An adaptive 256-colour palette keeps the noisy photographs small enough for the README.
    build_sheet(args.seed).quantize(256, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
