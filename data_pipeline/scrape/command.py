"""From the composed ``conf/scrape.yaml`` to a finished (or cleanly stopped) run, an exit code."""

from __future__ import annotations

import fcntl
import logging
import re
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

import instaloader
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from data_pipeline.catalog import Catalog
from data_pipeline.scrape.network import NetworkRetry, NetworkUnreachable
from data_pipeline.scrape.rate import BudgetedRateController, WaitBudget, WaitBudgetExceeded
from data_pipeline.scrape.session import LoginNeeded, find_session, load_login
from data_pipeline.scrape.walk import Walk, WalkSettings

log = logging.getLogger(__name__)

USAGE = "python -m data_pipeline.scrape hashtags=[joanmiro,miro] out=DIR login.user=NAME"
# Exit codes: what a wrapper script needs to tell apart.
EXIT_OK, EXIT_ERROR, EXIT_LOGIN, EXIT_WAIT, EXIT_NETWORK, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
_SLIDES = {"all": None, "first": "1"}  # carousel= → instaloader's --slide
_HASHTAG = re.compile(r"\w{1,150}")


class ConfigError(Exception):
    """A config value the scraper cannot use; the message names the key and the fix."""


def run(cfg: DictConfig) -> int:
    """Scrape as ``cfg`` says; print the outcome and return the process exit code."""
    try:
        hashtags = parse_hashtags(cfg.hashtags)
        slide = parse_carousel(cfg.carousel)
        if OmegaConf.is_missing(cfg, "out"):
            raise ConfigError(f"out=DIR is required (the raw folder to fill); usage: {USAGE}")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    try:
        session = find_session(cfg.login.user, cfg.login.session_file, cfg.login.anonymous)
    except LoginNeeded as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_LOGIN
    out_dir = Path(to_absolute_path(cfg.out))
    out_dir.mkdir(parents=True, exist_ok=True)
    budget = WaitBudget(cfg.rate_limit.max_wait, cfg.rate_limit.time_scale)
    loader = make_loader(cfg, slide, budget)
    settings = WalkSettings(
        max_posts=cfg.max_posts,
        post_attempts=cfg.post_attempts,
        backoff=cfg.rate_limit.backoff,
        backoff_max=cfg.rate_limit.backoff_max,
        progress=cfg.progress,
        network=NetworkRetry(cfg.network.retries, cfg.network.backoff),
    )
    resume = f"Rerun the same command to continue: {_command_line(cfg)}"
    try:
        with _exclusive(out_dir), Catalog.open(out_dir) as catalog, logging_redirect_tqdm():
            if session is not None:
                settings.network.call(
                    "checking the login",
                    lambda: load_login(loader, cfg.login.user, session, cfg.login.check),
                )
            walk = Walk(
                loader, catalog, out_dir, budget, settings, cfg.login.user, cfg.login.session_file
            )
            report = walk.run(hashtags)
    except LoginNeeded as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_LOGIN
    except WaitBudgetExceeded as error:  # while checking the login, before the walk
        print(f"stopped: waited as long as max_wait allows ({error}). {resume}")
        return EXIT_WAIT
    except NetworkUnreachable as error:  # while checking the login, before the walk
        print(_network_stop(str(error), resume), file=sys.stderr)
        return EXIT_NETWORK
    except BlockingIOError:
        print(f"error: another scrape is writing into {out_dir}; wait for it", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"\ninterrupted; every post recorded so far is kept. {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug or an answer instaloader did not expect
        log.exception("scrape failed")
        print(
            f"error: {type(error).__name__}: {error}\n"
            f"The catalog {out_dir / 'catalog.sqlite'} keeps every post recorded so far. {resume}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    finally:
        loader.close()
    print(report.summary())
    print(f"posts in {out_dir} (catalog.sqlite, #<hashtag>/ folders)")
    if report.stopped == "max_wait":
        print(f"stopped: waited as long as max_wait allows ({report.message}). {resume}")
        return EXIT_WAIT
    if report.stopped == "network":
        print(_network_stop(report.message, resume), file=sys.stderr)
        return EXIT_NETWORK
    if report.stopped in ("login", "aborted"):
        print(f"error: {report.message}\nAfter that: {resume}", file=sys.stderr)
        return EXIT_LOGIN
    if report.stopped == "max_posts":
        print(f"stopped: the catalog holds max_posts={cfg.max_posts} downloaded posts")
    return EXIT_ERROR if report.hashtag_errors else EXIT_OK


def make_loader(cfg: DictConfig, slide: str | None, budget: WaitBudget) -> instaloader.Instaloader:
    """``cfg.loader``'s Instaloader, waiting through ``budget``, giving up connecting after
    ``network.connect_timeout`` seconds (``loader.request_timeout`` bounds reading an answer).

    instaloader would only print a video thumbnail's failed download; raised instead, it gets
    the retries of any image (and, when Instagram cannot be reached, stops the walk).
    """
    loader = instantiate(cfg.loader)(
        slide=slide,
        rate_controller=lambda context: BudgetedRateController(context, budget),
        request_timeout=(cfg.network.connect_timeout, cfg.loader.request_timeout),
    )
    loader.context.raise_all_errors = True
    return loader


def parse_hashtags(value) -> list[str]:
    """``hashtags=[joanmiro,'#Miro']`` → ``['joanmiro', 'miro']`` (instaloader lowercases too)."""
    items = [value] if isinstance(value, str) else list(value or [])
    tags = [str(item).strip().lstrip("#").lower() for item in items]
    bad = [tag for tag in tags if not _HASHTAG.fullmatch(tag)]
    if not tags or bad:
        raise ConfigError(
            f"hashtags={OmegaConf.to_container(value) if OmegaConf.is_config(value) else value} "
            "must list hashtags of letters, digits and _, e.g. hashtags=[joanmiro,miro]"
        )
    return list(dict.fromkeys(tags))


def parse_carousel(value: str) -> str | None:
    """``carousel=all|first`` → instaloader's ``slide`` option."""
    if value not in _SLIDES:
        raise ConfigError(f"carousel={value} must be one of {', '.join(_SLIDES)}")
    return _SLIDES[value]


@contextmanager
def _exclusive(out_dir: Path):
    """Hold ``out_dir/.scrape.lock``: two walkers in one folder would fight over the catalog."""
    with open(out_dir / ".scrape.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


def _network_stop(message: str, resume: str) -> str:
    """What to print when the network could not be reached: what failed and how to resume."""
    return (
        f"stopped: {message}.\nCheck the network connection (and HTTPS_PROXY, if set); the "
        f"catalog keeps every post recorded so far.\n{resume}"
    )


def _command_line(cfg: DictConfig) -> str:
    if HydraConfig.initialized():
        overrides = list(HydraConfig.get().overrides.task)
    else:
        overrides = [f"out={cfg.out}"]
    return " ".join(["python -m data_pipeline.scrape", *map(shlex.quote, overrides)])
