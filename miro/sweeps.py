"""One table of a Hydra multirun: each job's overrides beside its final metrics.

``SweepSummary`` is a Hydra callback (configured under ``hydra.callbacks`` in
``conf/hydra/default.yaml``). After every job of a sweep has returned it reads each job's
``.hydra/overrides.yaml`` and the ``metrics.json`` that ``miro.train.train`` wrote, and writes
``summary.csv`` and ``summary.md`` into the sweep dir, printing the table too. It reads the job
dirs rather than the launcher's return values, so it works the same for the basic launcher, the
Optuna sweeper and SLURM jobs that ran elsewhere.

Example::

    python -m miro.train -m +experiment=instagram_text text.num_topics=20,40 loss=sigmoid_ce,infonce
    # → outputs/instagram_text/multirun/<date>/<time>/summary.csv and summary.md
"""

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


@dataclass
class JobResult:
    """One job of a sweep: its number, its ``key=value`` overrides and its final metrics
    (empty when the job wrote none, e.g. because it failed)."""

    num: int
    directory: Path
    overrides: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)


def override_key(override: str) -> tuple[str, str]:
    """``"+experiment=x"`` → ``("+experiment", "x")``: key and value of one command-line
    override, the ``+``/``~`` prefix kept so the key reads as the user typed it."""
    key, _, value = override.partition("=")
    return key, value


def read_jobs(sweep_dir: Path, metrics_file: str = "metrics.json") -> list[JobResult]:
    """Every job under ``sweep_dir`` (a dir holding ``.hydra/overrides.yaml``), in job order."""
    jobs = []
    for overrides_file in sweep_dir.rglob(".hydra/overrides.yaml"):
        directory = overrides_file.parent.parent
        hydra_file = overrides_file.with_name("hydra.yaml")
        num = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.job.num", default=None)
        overrides = dict(override_key(str(o)) for o in OmegaConf.load(overrides_file))
        metrics_path = directory / metrics_file
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        jobs.append(JobResult(int(num if num is not None else -1), directory, overrides, metrics))
    return sorted(jobs, key=lambda job: (job.num, str(job.directory)))


def format_value(value: Any) -> str:
    """Numbers to four significant digits, anything else as it is; ``""`` for a missing one."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def best_job(jobs: Sequence[JobResult], objective: str, mode: str = "max") -> JobResult | None:
    """The job with the highest (``mode="max"``) or lowest ``objective``; None if no job has
    it."""
    scored = [job for job in jobs if not math.isnan(job.metrics.get(objective, math.nan))]
    if not scored:
        return None
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda job: sign * job.metrics[objective])


def columns_of(jobs: Sequence[JobResult], objective: str | None = None) -> tuple[list, list]:
    """The override keys (in the order typed) and metric names (``objective`` first, then
    sorted) that occur in any of ``jobs``."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    metrics = sorted({name for job in jobs for name in job.metrics})
    if objective in metrics:
        metrics.remove(objective)
        metrics.insert(0, objective)
    return keys, metrics


def summary_table(
    jobs: Sequence[JobResult], objective: str | None = None
) -> tuple[list[str], list[list[str]]]:
    """Columns and rows: ``job``, every override key, then every metric (``objective``
    first). Metrics missing from a job are empty cells."""
    keys, metrics = columns_of(jobs, objective)
    rows = [
        [
            str(job.num),
            *(job.overrides.get(key, "") for key in keys),
            *(format_value(job.metrics.get(name)) for name in metrics),
        ]
        for job in jobs
    ]
    return ["job", *keys, *metrics], rows


def markdown(jobs: Sequence[JobResult], objective: str | None = None, mode: str = "max") -> str:
    """The summary for a person: overrides shared by every job on one line, a table of the
    overrides that differ and every metric, then the best job by ``objective``."""
    keys, metrics = columns_of(jobs, objective)
    shared = {}  # with one job, every override is a column
    if len(jobs) > 1:
        shared = {k: jobs[0].overrides.get(k) for k in keys}
        shared = {k: v for k, v in shared.items() if all(j.overrides.get(k) == v for j in jobs)}
    varying = [key for key in keys if key not in shared]
    columns = ["job", *varying, *metrics]
    lines = [f"# Sweep of {len(jobs)} jobs", ""]
    if shared:
        lines += ["Every job: `" + " ".join(f"{k}={v}" for k, v in shared.items()) + "`", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for job in jobs:
        cells = [str(job.num), *(job.overrides.get(key, "") for key in varying)]
        cells += [format_value(job.metrics.get(name)) for name in metrics]
        lines.append("| " + " | ".join(cell or "–" for cell in cells) + " |")
    if failed := [job.num for job in jobs if not job.metrics]:
        lines += ["", f"No metrics (failed or still running): jobs {failed}"]
    if objective and (best := best_job(jobs, objective, mode)):
        chosen = " ".join(f"{k}={best.overrides.get(k, '')}" for k in varying or keys)
        lines += [
            "",
            f"Best {objective} ({mode}): job {best.num}, "
            f"{format_value(best.metrics[objective])}, `{chosen}`",
        ]
    return "\n".join(lines) + "\n"


def write_summary(
    jobs: Sequence[JobResult], sweep_dir: Path, objective: str | None = None, mode: str = "max"
) -> str:
    """Write ``summary.csv`` (every override and metric) and ``summary.md`` into ``sweep_dir``;
    returns the markdown."""
    columns, rows = summary_table(jobs, objective)
    with (sweep_dir / "summary.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(rows)
    text = markdown(jobs, objective, mode)
    (sweep_dir / "summary.md").write_text(text)
    return text


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, write and print a summary of its jobs.

    Args:
        metrics_file: the file each job writes its final metrics to, in its output dir.
        objective: the metric that names the best job (first metric column).
        mode: ``max`` or ``min``: whether a higher or lower ``objective`` is better.
    """

    def __init__(
        self, metrics_file: str = "metrics.json", objective: str | None = None, mode: str = "max"
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"hydra.callbacks.sweep_summary.mode={mode!r}: use max or min")
        self.metrics_file = metrics_file
        self.objective = objective
        self.mode = mode

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = read_jobs(sweep_dir, self.metrics_file) if sweep_dir.is_dir() else []
        if not jobs:
            return
        text = write_summary(jobs, sweep_dir, self.objective, self.mode)
        # print, not log: after the jobs, logging is still configured into the last job's log
        print(f"{text}\nsummary: {sweep_dir / 'summary.csv'}", flush=True)
