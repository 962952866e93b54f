"""Miró's visual vocabulary drawn with PIL: stars, moons, suns, eyes, birds, ladders, spirals.

Shapes are bold (thick black outlines, flat palette colours) so that they stay distinguishable
after downscaling to 64x64 px, and are built from numpy point lists so rotation is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

MOTIFS: tuple[str, ...] = ("bird", "eye", "ladder", "moon", "spiral", "star", "sun")
PALETTE: dict[str, RGB] = {
    "red": (206, 38, 36),
    "blue": (22, 72, 158),
    "yellow": (246, 196, 18),
    "green": (32, 128, 72),
    "black": (22, 20, 20),
}
BACKGROUNDS: tuple[str, ...] = ("cream", "light_blue", "ochre", "gradient", "paper")
_FLAT_BACKGROUNDS: dict[str, RGB] = {
    "cream": (241, 233, 212),
    "light_blue": (188, 214, 232),
    "ochre": (212, 168, 92),
}
BLACK = PALETTE["black"]
_WHITE: RGB = (250, 247, 238)
_CIRCLE = np.stack([np.cos(np.arange(48) * np.pi / 24), np.sin(np.arange(48) * np.pi / 24)], 1)
# Motifs that are often repeated in one picture (a pair of eyes, a sky of stars).
_REPEATABLE = frozenset({"star", "eye", "bird"})


@dataclass(frozen=True)
class Stroke:
    """Where and how one motif instance is drawn (pixels; angle in radians)."""

    cx: float
    cy: float
    radius: float
    angle: float
    width: int
    outline: int
    fill: RGB


@dataclass(frozen=True)
class DrawnMotif:
    """One motif of a composition: its canonical name, colour name and number of instances."""

    name: str
    colour: str
    count: int
    radius: float


@dataclass(frozen=True)
class Composition:
    """What an image shows: its background name and the motifs on it (largest first)."""

    background: str
    motifs: tuple[DrawnMotif, ...]

    @property
    def dominant_colour(self) -> str:
        """Colour name of the largest motif."""
        return self.motifs[0].colour


def _place(points: np.ndarray, s: Stroke) -> list[tuple[float, float]]:
    """Scale unit-frame ``points`` (n, 2) by the stroke radius, rotate and move them."""
    c, si = math.cos(s.angle), math.sin(s.angle)
    p = points * s.radius
    x = p[:, 0] * c - p[:, 1] * si + s.cx
    y = p[:, 0] * si + p[:, 1] * c + s.cy
    return list(zip(x.tolist(), y.tolist(), strict=True))


def _polygon(draw: ImageDraw.ImageDraw, pts: list, fill: RGB, outline: int) -> None:
    draw.polygon(pts, fill=fill, outline=BLACK, width=outline)


def _disc(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: RGB, outline: int) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=BLACK, width=outline)


def _outlined_lines(draw: ImageDraw.ImageDraw, lines: list[list], s: Stroke, width: int) -> None:
    """Draw polylines in the stroke colour with a black border (Miró's thick contour)."""
    if s.fill == BLACK:
        for pts in lines:
            draw.line(pts, fill=BLACK, width=width + s.outline, joint="curve")
        return
    cap = width / 2 + s.outline
    for pts in lines:
        draw.line(pts, fill=BLACK, width=width + 2 * s.outline, joint="curve")
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - cap, y - cap, x + cap, y + cap), fill=BLACK)
    for pts in lines:
        draw.line(pts, fill=s.fill, width=width, joint="curve")


def draw_star(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Miró's asterisk star: 3-4 crossing bars of uneven length around a small black centre."""
    bars = int(rng.integers(3, 5))
    lines = []
    for k in range(bars):
        a = math.pi * k / bars
        length = 1.0 if k % 2 == 0 else rng.uniform(0.6, 1.0)
        end = np.array([math.cos(a), math.sin(a)]) * length
        lines.append(_place(np.stack([-end, end]), s))
    _outlined_lines(draw, lines, s, s.width)
    _disc(draw, s.cx, s.cy, s.width * 0.9, BLACK, 1)


def draw_moon(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Crescent moon: the unit disc minus a shifted disc, filled, with a black outline."""
    shift, inner = rng.uniform(0.35, 0.55), rng.uniform(0.8, 0.92)
    x = (1 - inner**2 + shift**2) / (2 * shift)
    y = math.sqrt(max(1 - x * x, 1e-6))
    outer_start, inner_start = math.atan2(y, x), math.atan2(y, x - shift)
    t_out = np.linspace(outer_start, 2 * math.pi - outer_start, 32)
    t_in = np.linspace(-inner_start, inner_start - 2 * math.pi, 24)
    outer_arc = np.stack([np.cos(t_out), np.sin(t_out)], 1)
    inner_arc = np.stack([shift + inner * np.cos(t_in), inner * np.sin(t_in)], 1)
    pts = np.concatenate([outer_arc, inner_arc])
    _polygon(draw, _place(pts, s), s.fill, s.outline + 1)


def draw_sun(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Sun: a flat disc, often circled by short black rays."""
    rays = rng.random() < 0.6
    disc = s.radius * (0.62 if rays else 0.85)
    if rays:
        n = int(rng.integers(8, 15))
        for a in np.linspace(0, 2 * math.pi, n, endpoint=False):
            ray = np.array([math.cos(a), math.sin(a)])
            draw.line(
                _place(np.stack([0.76 * ray, ray]), s), fill=BLACK, width=max(2, s.width // 2)
            )
    _disc(draw, s.cx, s.cy, disc, s.fill, s.outline + 1)


def draw_eye(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Almond-shaped eye with a coloured iris, a black pupil and sometimes lashes."""
    t = np.linspace(0, math.pi, 20)
    height = rng.uniform(0.42, 0.55)
    top = np.stack([np.cos(t), -height * np.sin(t) ** 2], 1)
    bottom = np.stack([np.cos(t[::-1]), height * np.sin(t[::-1]) ** 2], 1)
    if rng.random() < 0.5:
        for a in np.linspace(0.3 * math.pi, 0.7 * math.pi, 5):
            base = np.array([math.cos(a), -height * math.sin(a) ** 2])
            tip = base + np.array([math.cos(a), -1.0]) * 0.28
            draw.line(_place(np.stack([base, tip]), s), fill=BLACK, width=max(2, s.width // 2))
    _polygon(draw, _place(np.concatenate([top, bottom]), s), _WHITE, s.outline + 1)
    iris = s.radius * height * 0.85
    _disc(draw, s.cx, s.cy, iris, s.fill, s.outline)
    _disc(draw, s.cx, s.cy, iris * 0.45, BLACK if s.fill != BLACK else _WHITE, 1)


_BIRD_PARTS = (
    ("tail", np.array([[0.4, 0.05], [1.0, -0.45], [0.8, 0.05], [1.0, 0.5]])),
    ("body", _CIRCLE * [0.56, 0.32] + [0.04, 0.05]),
    ("wing", np.array([[-0.26, -0.14], [0.36, -0.14], [0.46, -0.95]])),
    ("head", _CIRCLE * 0.25 + [-0.58, -0.14]),
    ("beak", np.array([[-0.76, -0.26], [-1.0, -0.1], [-0.78, -0.02]])),
)


def draw_bird(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Stylised bird in profile: oval body, fan tail, raised black wing, round head, beak."""
    mirror = np.array([-1.0 if rng.random() < 0.5 else 1.0, 1.0])
    for part, pts in _BIRD_PARTS:
        fill = BLACK if part in ("wing", "beak") else s.fill
        _polygon(draw, _place(pts * mirror, s), fill, s.outline)
    eye = _place(np.array([[-0.62, -0.18]]) * mirror, s)[0]
    _disc(draw, eye[0], eye[1], max(1.5, s.radius * 0.06), _WHITE if s.fill == BLACK else BLACK, 0)


def draw_ladder(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Miró's ladder of escape: two rails and 4-6 rungs."""
    rungs = int(rng.integers(4, 7))
    half = rng.uniform(0.3, 0.38)
    lines = [_place(np.array([[x, -1.0], [x, 1.0]]), s) for x in (-half, half)]
    lines += [_place(np.array([[-half, y], [half, y]]), s) for y in np.linspace(-0.8, 0.8, rungs)]
    _outlined_lines(draw, lines, s, max(3, int(s.width * 0.9)))


def draw_spiral(draw: ImageDraw.ImageDraw, s: Stroke, rng: np.random.Generator) -> None:
    """Archimedean spiral of 2-2.75 turns drawn as one thick line."""
    turns = rng.uniform(2.0, 2.75)
    t = np.linspace(0, turns * 2 * math.pi, int(turns * 24))
    direction = 1.0 if rng.random() < 0.5 else -1.0
    r = 0.08 + 0.92 * t / t[-1]
    pts = np.stack([r * np.cos(t), direction * r * np.sin(t)], 1)
    _outlined_lines(draw, [_place(pts, s)], s, max(2, int(s.width * 0.75)))


DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, Stroke, np.random.Generator], None]] = {
    "bird": draw_bird,
    "eye": draw_eye,
    "ladder": draw_ladder,
    "moon": draw_moon,
    "spiral": draw_spiral,
    "star": draw_star,
    "sun": draw_sun,
}
# How far a motif may turn (radians): ladders and eyes stay upright-ish, stars spin freely.
_MAX_TILT = dict.fromkeys(("moon", "spiral", "star", "sun"), math.pi) | {
    "bird": 0.5,
    "eye": 0.45,
    "ladder": 0.4,
}


def paint_background(name: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A flat, gradient or paper-textured background of ``width`` x ``height`` px (RGB)."""
    if name in _FLAT_BACKGROUNDS:
        return Image.new("RGB", (width, height), _FLAT_BACKGROUNDS[name])
    if name == "gradient":
        top, bottom = (
            np.array(_FLAT_BACKGROUNDS["light_blue"]),
            np.array(_FLAT_BACKGROUNDS["cream"]),
        )
        w = np.linspace(0, 1, height)[:, None, None] ** rng.uniform(0.6, 1.6)
        column = (top * (1 - w) + bottom * w).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(np.broadcast_to(column, (height, width, 3))))
    if name == "paper":
        coarse = rng.normal(128, 10, (height // 16 + 2, width // 16 + 2)).clip(0, 255)
        blotches = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BILINEAR)
        grain = rng.integers(-5, 6, (height, width, 1), dtype=np.int16)
        base = np.array(_FLAT_BACKGROUNDS["cream"], dtype=np.int16)
        pixels = base + (np.asarray(blotches, dtype=np.int16)[..., None] - 128) + grain
        return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    raise ValueError(f"unknown background {name!r}; choose one of {BACKGROUNDS}")


def _free_spot(
    rng: np.random.Generator, radius: float, size: tuple[int, int], taken: list[tuple]
) -> tuple[float, float]:
    """The candidate centre (of 16) that keeps farthest from motifs already placed."""
    margin = radius * 1.05 + 3
    lo = np.array([margin, margin])
    hi = np.maximum(lo + 1, np.array(size, dtype=float) - margin)
    candidates = lo + rng.random((16, 2)) * (hi - lo)
    if not taken:
        return tuple(candidates[0])
    centres, radii = np.array([t[:2] for t in taken]), np.array([t[2] for t in taken])
    gaps = np.linalg.norm(candidates[:, None] - centres[None], axis=2) - radii[None] - radius
    return tuple(candidates[int(np.argmax(gaps.min(axis=1)))])


def _decorate(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng: np.random.Generator) -> None:
    """Small dots and a thin wavy line, the filler of Miró's skies (too small to read as motifs)."""
    short = min(size)
    for _ in range(int(rng.integers(0, 4))):
        r = short * rng.uniform(0.012, 0.03)
        x, y = rng.random() * size[0], rng.random() * size[1]
        colour = PALETTE[str(rng.choice(list(PALETTE)))]
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    if rng.random() < 0.3:
        x = np.linspace(0, size[0], 24)
        wave = short * 0.04 * np.sin(x / size[0] * rng.uniform(4, 12))
        y = rng.uniform(0.1, 0.9) * size[1] + wave
        draw.line(list(zip(x.tolist(), y.tolist(), strict=True)), fill=BLACK, width=2)


def compose(
    rng: np.random.Generator,
    width: int,
    height: int,
    num_motifs: int,
    size_range: tuple[float, float] = (0.2, 0.45),
) -> tuple[Image.Image, Composition]:
    """Draw a Miró-like picture of ``num_motifs`` distinct motifs on a random background.

    ``size_range`` bounds each motif's diameter as a fraction of the short side. Returns the
    RGB image and what it shows.
    """
    background = str(rng.choice(BACKGROUNDS))
    image = paint_background(background, width, height, rng)
    draw = ImageDraw.Draw(image)
    _decorate(draw, (width, height), rng)
    short = min(width, height)
    names = [str(n) for n in rng.choice(MOTIFS, size=num_motifs, replace=False)]
    radii = sorted((rng.uniform(*size_range) * short / 2 for _ in names), reverse=True)
    outline = max(2, round(short * rng.uniform(0.007, 0.012)))
    taken: list[tuple] = []
    drawn = []
    for name, radius in zip(names, radii, strict=True):
        colour = str(rng.choice(list(PALETTE)))
        count = 2 if name in _REPEATABLE and rng.random() < 0.25 else 1
        width_px = max(3, round(radius * rng.uniform(0.13, 0.2)))
        for k in range(count):
            r = radius if k == 0 else radius * rng.uniform(0.6, 0.8)
            cx, cy = _free_spot(rng, r, (width, height), taken)
            taken.append((cx, cy, r))
            angle = rng.uniform(-_MAX_TILT[name], _MAX_TILT[name])
            stroke = Stroke(cx, cy, r, angle, width_px, outline, PALETTE[colour])
            DRAWERS[name](draw, stroke, rng)
        drawn.append(DrawnMotif(name, colour, count, radius))
    return image, Composition(background, tuple(drawn))
