"""Generate a directory of synthetic Miró posts plus the ground truth that evaluation reads."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import instaloader
import numpy as np
from tqdm import tqdm

from data_pipeline.synthetic.captions import LANGUAGES, write_caption
from data_pipeline.synthetic.motifs import MOTIFS, compose
from data_pipeline.synthetic.posts import (
    draw_media_ids,
    draw_timestamps,
    graphql_node,
    make_owners,
    shortcode,
    write_post,
    zipf_weights,
)

GROUND_TRUTH = "ground_truth.jsonl"


@dataclass(frozen=True)
class GeneratorSettings:
    """Knobs of the generator; the defaults are those of ``conf/synthetic.yaml``.

    Sizes are in pixels; ``motif_size`` bounds a motif's diameter as a fraction of the image's
    short side; ``unrelated_fraction`` of captions say nothing about their image; in the others
    each named motif brings a sentence of its world (``scene_rate``) and a ``small_talk_rate``
    share add an unrelated sentence; ``languages``
    maps en/es/ca/fr to relative weights; owners are drawn with Zipf weights ``1/rank**s``.
    """

    min_size: int = 256
    max_size: int = 384
    jpeg_quality: int = 90
    min_motifs: int = 1
    max_motifs: int = 3
    motif_size: tuple[float, float] = (0.22, 0.45)
    unrelated_fraction: float = 0.2
    scene_rate: float = 0.7
    small_talk_rate: float = 0.5
    misspelling_rate: float = 0.07
    colour_rate: float = 0.35
    languages: Mapping[str, float] = field(
        default_factory=lambda: {"en": 0.4, "es": 0.25, "ca": 0.2, "fr": 0.15}
    )
    num_owners: int = 80
    owner_zipf_exponent: float = 1.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "motif_size", tuple(self.motif_size))  # a list from YAML
        low, high = self.motif_size
        checks = [
            (32 <= self.min_size <= self.max_size, "need 32 <= min_size <= max_size"),
            (1 <= self.jpeg_quality <= 100, "need 1 <= jpeg_quality <= 100"),
            (
                1 <= self.min_motifs <= self.max_motifs <= 3,
                "need 1 <= min_motifs <= max_motifs <= 3",
            ),
            (0 < low <= high <= 0.9, "need 0 < motif_size[0] <= motif_size[1] <= 0.9"),
            (0 <= self.unrelated_fraction <= 1, "need 0 <= unrelated_fraction <= 1"),
            (0 <= self.scene_rate <= 1, "need 0 <= scene_rate <= 1"),
            (0 <= self.small_talk_rate <= 1, "need 0 <= small_talk_rate <= 1"),
            (0 <= self.misspelling_rate <= 1, "need 0 <= misspelling_rate <= 1"),
            (0 <= self.colour_rate <= 1, "need 0 <= colour_rate <= 1"),
            (1 <= self.num_owners <= 10_000, "need 1 <= num_owners <= 10000"),
            (
                set(self.languages) <= set(LANGUAGES)
                and min(self.languages.values(), default=-1) >= 0
                and sum(self.languages.values()) > 0,
                f"languages must map some of {LANGUAGES} to weights >= 0 (not all 0)",
            ),
        ]
        errors = [message for ok, message in checks if not ok]
        if errors:
            raise ValueError(
                f"invalid synthetic generator settings ({'; '.join(errors)}) in {self}; "
                "fix the generator.* keys of conf/synthetic.yaml or their overrides"
            )


@dataclass(frozen=True)
class Summary:
    """What a generator run wrote: where, and counts per language, motif and owner."""

    out_dir: Path
    ground_truth: Path
    num_posts: int
    languages: dict[str, int]
    motifs: dict[str, int]
    unrelated_captions: int
    owners: dict[str, int]

    def report(self) -> str:
        """A few human-readable lines for the end of a run."""
        top = ", ".join(f"{u} {c}" for u, c in Counter(self.owners).most_common(3))
        return "\n".join(
            [
                f"Wrote {self.num_posts} synthetic posts to {self.out_dir}",
                f"  ground truth (evaluation only): {self.ground_truth}",
                "  languages: " + ", ".join(f"{k} {v}" for k, v in self.languages.items()),
                "  motifs (images): " + ", ".join(f"{k} {v}" for k, v in self.motifs.items()),
                f"  captions unrelated to their image: {self.unrelated_captions}",
                f"  owners: {len(self.owners)} (most posts: {top})",
            ]
        )


def _prepare(out_dir: Path) -> None:
    """Create ``out_dir``; clear an earlier synthetic run there, but never a real scrape."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = [p for p in out_dir.glob("*_UTC*") if p.is_file()]
    if stale and not (out_dir / GROUND_TRUTH).exists():
        raise FileExistsError(
            f"{out_dir} holds {len(stale)} post files but no {GROUND_TRUTH}, so it looks like a "
            f"real scrape; refusing to overwrite it. Pass an empty or new directory as out=..."
        )
    for path in stale:
        path.unlink()
    (out_dir / GROUND_TRUTH).unlink(missing_ok=True)


def generate_posts(
    out_dir: Path | str,
    num_posts: int,
    seed: int,
    settings: GeneratorSettings | None = None,
    *,
    progress: bool = False,
) -> Summary:
    """Write ``num_posts`` Miró-like posts in instaloader's layout, plus ``ground_truth.jsonl``.

    Each post is ``<date>_UTC.jpg``/``.txt``/``.json.xz`` in ``out_dir``; the same ``seed``
    gives byte-identical files. ``ground_truth.jsonl`` has one JSON object per post, sorted by
    shortcode: ``shortcode``, ``motifs`` and ``colours`` (canonical English names, sorted),
    ``background``, ``language`` and ``caption_mentions_image``. An earlier synthetic run in
    ``out_dir`` is replaced.

    >>> summary = generate_posts("data/synthetic/raw", num_posts=100, seed=0)  # doctest: +SKIP
    >>> print(summary.report())  # doctest: +SKIP
    """
    if num_posts < 1:
        raise ValueError(f"num_posts must be at least 1, got {num_posts}")
    settings = settings or GeneratorSettings()
    out_dir = Path(out_dir)
    _prepare(out_dir)
    rng = np.random.default_rng(seed)
    timestamps = draw_timestamps(rng, num_posts)
    media_ids = draw_media_ids(rng, num_posts)
    owners = make_owners(rng, settings.num_owners)
    post_owners = rng.choice(
        settings.num_owners,
        size=num_posts,
        p=zipf_weights(settings.num_owners, settings.owner_zipf_exponent),
    )
    languages = list(settings.languages)
    weights = np.array([settings.languages[k] for k in languages], dtype=float)
    post_languages = rng.choice(languages, size=num_posts, p=weights / weights.sum())
    num_unrelated = round(settings.unrelated_fraction * num_posts)
    unrelated = set(rng.choice(num_posts, size=num_unrelated, replace=False).tolist())
    post_seeds = np.random.SeedSequence(seed).spawn(num_posts)
    context = instaloader.Instaloader(quiet=True).context
    usernames = [o.username for o in owners]
    rows = []
    for i in tqdm(range(num_posts), desc="synthetic posts", unit="post", disable=not progress):
        post_rng = np.random.default_rng(post_seeds[i])
        size = post_rng.integers(settings.min_size, settings.max_size + 1, size=2)
        width, height = int(size[0]), int(size[1])
        num_motifs = int(post_rng.integers(settings.min_motifs, settings.max_motifs + 1))
        image, composition = compose(post_rng, width, height, num_motifs, settings.motif_size)
        owner = owners[int(post_owners[i])]
        caption = write_caption(
            post_rng,
            str(post_languages[i]),
            composition,
            mention_image=i not in unrelated,
            owner=owner.username,
            other_users=usernames,
            scene_rate=settings.scene_rate,
            small_talk_rate=settings.small_talk_rate,
            misspelling_rate=settings.misspelling_rate,
            colour_rate=settings.colour_rate,
        )
        likes = int(post_rng.lognormal(4.0, 1.3))
        node = graphql_node(
            media_id=media_ids[i],
            owner=owner,
            timestamp=timestamps[i],
            caption=caption.text,
            width=width,
            height=height,
            likes=likes,
            comments=int(post_rng.poisson(1 + likes * 0.03)),
        )
        write_post(context, out_dir, node, image, settings.jpeg_quality)
        rows.append(
            {
                "shortcode": shortcode(media_ids[i]),
                "motifs": sorted(m.name for m in composition.motifs),
                "colours": sorted({m.colour for m in composition.motifs}),
                "background": composition.background,
                "language": caption.language,
                "caption_mentions_image": caption.mentions_image,
            }
        )
    rows.sort(key=lambda row: row["shortcode"])
    ground_truth = out_dir / GROUND_TRUTH
    ground_truth.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return Summary(
        out_dir=out_dir.resolve(),
        ground_truth=ground_truth.resolve(),
        num_posts=num_posts,
        languages={k: int(v) for k, v in sorted(Counter(post_languages.tolist()).items())},
        motifs={m: sum(m in row["motifs"] for row in rows) for m in MOTIFS},
        unrelated_captions=len(unrelated),
        owners=dict(Counter(owners[int(k)].username for k in post_owners)),
    )
