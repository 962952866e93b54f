"""Contact sheets, the pictures miro draws of what it found: a grid of labelled images
(``labelled_grid``: dreams layer by layer, training's sample retrievals) and a query's ranked
results (``contact_sheet``: the query on the left, then each image with its rank, score, id
and the start of its caption). One look: white ground, grey cells, DejaVu Sans (accented
captions: Miró, estrella, étoile).

Example::

    labelled_grid([("inception3a", dream_3a), ("inception4c", dream_4c)], columns=3).save("a.png")
    contact_sheet(hits, query_text="red star").save("red_star.png")
"""

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import emoji
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps
from torchvision.transforms.v2 import functional as TF

from miro.images import UnreadableImageError, read_image, to_pil
from miro.retrieval.query import Hit, shorten

BACKGROUND = (255, 255, 255)
CELL = (232, 232, 232)
INK = (20, 20, 20)
MUTED = (110, 110, 110)
PAD = 8
LINE = 15  # pixels a text line takes at FONT_SIZE
FONT_SIZE = 12
CAPTION_HEIGHT = LINE + 3
# Pillow's built-in font has no accented letters (Miró, estrella, étoile); DejaVu Sans does.
FONTS = ("DejaVuSans.ttf", "Arial.ttf")


def labelled_grid(
    cells: Sequence[tuple[str, torch.Tensor | Image.Image]], columns: int = 4, cell_size: int = 256
) -> Image.Image:
    """A white sheet of ``cells`` (caption, image: ``(3, H, W)`` in [0, 1] or PIL), ``columns``
    wide; each image is fitted whole into a ``cell_size`` square with its caption below."""
    if not cells:
        raise ValueError("a contact sheet needs at least one image")
    columns = max(1, min(columns, len(cells)))
    rows = -(-len(cells) // columns)
    step_x, step_y = cell_size + PAD, cell_size + CAPTION_HEIGHT + PAD
    sheet = Image.new("RGB", (PAD + columns * step_x, PAD + rows * step_y), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for index, (caption, image) in enumerate(cells):
        picture = to_pil(image) if isinstance(image, torch.Tensor) else image.convert("RGB")
        picture = ImageOps.contain(picture, (cell_size, cell_size), Image.Resampling.LANCZOS)
        x, y = PAD + (index % columns) * step_x, PAD + (index // columns) * step_y
        sheet.paste(picture, (x + (cell_size - picture.width) // 2, y))
        draw.text((x, y + cell_size + 3), _fit(draw, caption, cell_size, font), fill=INK, font=font)
    return sheet


def thumbnail(path: Path, size: int) -> Image.Image:
    """``path`` fitted whole into a ``size`` square on a grey ground; a grey square saying so
    when it cannot be read (an index outliving its images)."""
    cell = Image.new("RGB", (size, size), CELL)
    try:
        image = TF.to_pil_image(read_image(path, min_side=size))
    except UnreadableImageError:
        ImageDraw.Draw(cell).text((PAD, size // 2), "unreadable", fill=MUTED, font=_font())
        return cell
    image = ImageOps.contain(image, (size, size), Image.Resampling.LANCZOS)
    cell.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return cell


def wrap(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> list[str]:
    """``text`` broken at spaces into lines at most ``width`` pixels wide (long words cut)."""
    lines: list[str] = []
    for word in text.split():
        while draw.textlength(word, font=font) > width and len(word) > 1:
            word = word[:-1]
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def contact_sheet(
    hits: Sequence[Hit],
    query_text: str | None = None,
    query_image: str | Path | None = None,
    thumb_size: int = 160,
    columns: int = 6,
) -> Image.Image:
    """The sheet as an RGB image: the query panel (``query_image`` if given, with
    ``query_text`` under it, else ``query_text`` alone), then ``hits`` in rows of ``columns``."""
    font = _font()
    columns = max(1, min(columns, len(hits) or 1))
    rows = max(1, -(-len(hits) // columns))
    label_lines = 3  # rank and score, id, caption
    cell_w, cell_h = thumb_size + PAD, thumb_size + PAD + label_lines * LINE
    panel_w = thumb_size + 2 * PAD
    width = panel_w + PAD + columns * cell_w + PAD
    height = max(PAD + rows * cell_h + PAD, PAD + thumb_size + 6 * LINE)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    y = PAD
    draw.text((PAD, y), "query", fill=MUTED, font=font)
    y += LINE
    if query_image is not None:
        sheet.paste(thumbnail(Path(query_image), thumb_size), (PAD, y))
        y += thumb_size + PAD // 2
    words = query_text if query_text is not None else Path(query_image or "").name
    words = emoji.replace_emoji(words, "")
    for line in wrap(draw, words, thumb_size, font)[: (height - y - PAD) // LINE]:
        draw.text((PAD, y), line, fill=INK, font=font)
        y += LINE
    draw.line([(panel_w, PAD), (panel_w, height - PAD)], fill=CELL, width=2)

    for position, hit in enumerate(hits):
        x = panel_w + PAD + (position % columns) * cell_w
        y = PAD + (position // columns) * cell_h
        sheet.paste(thumbnail(hit.image, thumb_size), (x, y))
        y += thumb_size + 2
        labels = [
            (f"#{hit.rank}  {hit.score:.3f}", INK),
            (_fit(draw, hit.id, thumb_size, font), INK),
            (_fit(draw, hit.caption, thumb_size, font), MUTED),
        ]
        for text, colour in labels:
            draw.text((x, y), text, fill=colour, font=font)
            y += LINE
    if not hits:
        draw.text((panel_w + PAD, PAD), "no results", fill=MUTED, font=font)
    return sheet


def sheet_path(output: str | Path, query_text: str | None, query_image: str | Path | None) -> Path:
    """``output`` when it names a ``.png``; else ``<output>/query-<words or image stem>.png``."""
    output = Path(output)
    if output.suffix.lower() == ".png":
        return output
    name = query_text if query_text is not None else Path(query_image or "image").stem
    slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())[:60]
    return output / f"query-{slug or 'image'}.png"


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """``text`` on one line without emojis (no font here draws them), shortened until it is at
    most ``width`` pixels wide."""
    line = shorten(emoji.replace_emoji(text, ""), 200)
    while len(line) > 1 and draw.textlength(line, font=font) > width:
        line = shorten(line, len(line) - 1)
    return line


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in FONTS:
        try:
            return ImageFont.truetype(name, FONT_SIZE)
        except OSError:  # not installed: try the next
            continue
    return ImageFont.load_default(size=FONT_SIZE)
