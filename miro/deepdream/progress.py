"""Progress of a dream: one event per gradient step, and a tqdm bar that shows them.

Example::

    dream(model, image, progress=ProgressBar())             # a bar over all octaves and steps
    dream(model, image, progress=lambda p: print(p.octave, p.step))
"""

from typing import NamedTuple

from tqdm.auto import tqdm


class DreamProgress(NamedTuple):
    """After step ``step`` (1-based) of ``steps`` in octave ``octave`` (0-based, smallest first)
    of ``octaves``, at ``size`` = (height, width) pixels."""

    octave: int
    octaves: int
    step: int
    steps: int
    size: tuple[int, int]


class ProgressBar:
    """A tqdm bar over dream steps, usable as a dream's ``progress`` callback.

    Args:
        total: steps the bar counts to; None takes one dream's ``octaves × steps`` from its first
            event (give ``frames × octaves × steps`` for a zoom).
        desc: the bar's label.
        disable: no bar at all (e.g. when stderr is not a terminal in a batch job).
    """

    def __init__(self, total: int | None = None, desc: str = "dream", disable: bool = False):
        self.total = total
        self.desc = desc
        self.disable = disable
        self.bar: tqdm | None = None
        self.count = 0

    def __call__(self, progress: DreamProgress) -> None:
        if self.bar is None:
            self.count, total = 0, self.total or progress.octaves * progress.steps
            self.bar = tqdm(total=total, desc=self.desc, unit="step", disable=self.disable)
        (height, width), octave = progress.size, progress.octave + 1
        self.bar.set_postfix_str(f"octave {octave}/{progress.octaves} {width}x{height}")
        self.bar.update(1)
        self.count += 1
        if self.count >= self.bar.total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
