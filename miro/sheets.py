"""Contact sheets: images in a grid, each with a caption under it.

Example::

    sheet = labelled_grid([("inception3a", dream_3a), ("inception4c", dream_4c)], columns=3)
    sheet.save("layers.png")
"""

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
PAD = 8
CAPTION_HEIGHT = 18


def to_pil(image: torch.Tensor) -> Image.Image:
    """``(3, H, W)`` or ``(1, 3, H, W)`` float in [0, 1] → an 8-bit RGB PIL image."""
    array = image.detach().squeeze(0).clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy())


def labelled_grid(
    cells: Sequence[tuple[str, torch.Tensor | Image.Image]], columns: int = 4, cell_size: int = 256
) -> Image.Image:
    """A white sheet of ``cells`` (caption, image), ``columns`` wide; each image is fitted whole
    into a ``cell_size`` square with its caption below."""
    if not cells:
        raise ValueError("a contact sheet needs at least one image")
    columns = max(1, min(columns, len(cells)))
    rows = -(-len(cells) // columns)
    step_x, step_y = cell_size + PAD, cell_size + CAPTION_HEIGHT + PAD
    sheet = Image.new("RGB", (PAD + columns * step_x, PAD + rows * step_y), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (caption, image) in enumerate(cells):
        picture = to_pil(image) if isinstance(image, torch.Tensor) else image.convert("RGB")
        picture = ImageOps.contain(picture, (cell_size, cell_size), Image.Resampling.LANCZOS)
        x, y = PAD + (index % columns) * step_x, PAD + (index // columns) * step_y
        sheet.paste(picture, (x + (cell_size - picture.width) // 2, y))
        draw.text((x, y + cell_size + 3), caption, fill=INK, font=font)
    return sheet
