"""Walk hashtags with instaloader's resumable iterators and record every post in the catalog.

For each hashtag, ``Hashtag.from_name(...).get_posts_resumable()`` gives a ``NodeIterator``;
after every post its ``freeze()`` is committed to the catalog in the same transaction as the
post's row, and the next run ``thaw()``s it. instaloader's ``resumable_iteration`` does the same
with a file, but only saves on an exception, so a ``kill -9`` would lose the position; here the
position is never older than the last recorded post.

A frozen iterator re-yields the post it stopped at, and hashtags share posts: both cases find
the post already downloaded and only add the hashtag to its row. A post whose download fails is
retried ``post_attempts`` times with backoff, then recorded as failed; a hashtag page that fails
is retried with backoff until the wait budget runs out. A request that cannot connect at all gets
a few quick tries (:mod:`data_pipeline.scrape.network`), then the walk stops, its post unrecorded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import instaloader
import requests
import urllib3
from tqdm import tqdm

from data_pipeline.catalog import Catalog, CatalogPost, Cursor
from data_pipeline.scrape.download import download_post, failed_record
from data_pipeline.scrape.network import NetworkRetry, NetworkUnreachable
from data_pipeline.scrape.rate import WaitBudget, WaitBudgetExceeded
from data_pipeline.scrape.session import LoginNeeded, how_to_login, is_login_error

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a request can raise on its way through instaloader: retried with backoff.
NETWORK_ERRORS = (
    instaloader.ConnectionException,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
)
# What one bad post can raise: recorded as a failed post, the walk goes on.
POST_ERRORS = (
    instaloader.InstaloaderException,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    KeyError,
    TypeError,
    ValueError,
    IndexError,
)
# Status codes that no retry will change (expired or forbidden image URLs, gone posts).
_FINAL_STATUS = re.compile(r"\b(400|403|404|410) [A-Z]")


@dataclass(frozen=True)
class WalkSettings:
    """How the walk behaves; defaults as in ``conf/scrape.yaml``.

    Args:
        max_posts: stop once the catalog holds this many downloaded posts (all hashtags).
        post_attempts: tries per post before it is recorded as failed.
        backoff: seconds to wait after the first failure in a row; doubles per failure.
        backoff_max: longest single backoff in seconds.
        progress: show a tqdm bar of downloaded posts against ``max_posts``.
        network: how often a request that cannot connect is tried before the walk stops.
    """

    max_posts: int = 200_000
    post_attempts: int = 3
    backoff: float = 30.0
    backoff_max: float = 900.0
    progress: bool = True
    network: NetworkRetry = field(default_factory=NetworkRetry)


@dataclass
class ScrapeReport:
    """What a run did. ``stopped``: complete, max_posts, max_wait, network, login or aborted."""

    downloaded: int = 0
    failed: int = 0
    known: int = 0
    hashtags_added: int = 0
    total_downloaded: int = 0
    stopped: str = "complete"
    message: str = ""
    hashtag_errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"downloaded {self.downloaded} new posts ({self.failed} failed, {self.known} already "
            f"known, {self.hashtags_added} got another hashtag); the catalog holds "
            f"{self.total_downloaded} downloaded posts",
        ]
        lines += [f"#{tag}: {error}" for tag, error in self.hashtag_errors.items()]
        return "\n".join(lines)


class Walk:
    """One run over ``hashtags``: see the module docstring. Call :meth:`run` once."""

    def __init__(
        self,
        loader: instaloader.Instaloader,
        catalog: Catalog,
        out_dir: Path,
        budget: WaitBudget,
        settings: WalkSettings,
        login_user: str | None = None,
        session_file: str | None = None,
    ):
        self.loader = loader
        self.catalog = catalog
        self.out_dir = out_dir
        self.budget = budget
        self.settings = settings
        self.login_user = login_user
        self.session_file = session_file
        self.report = ScrapeReport()
        self._failures_in_a_row = 0
        self._bar: tqdm | None = None

    def run(self, hashtags: Sequence[str]) -> ScrapeReport:
        """Walk each hashtag in turn until all are done, ``max_posts`` or a stop."""
        self.report.total_downloaded = self.catalog.count()
        self._bar = tqdm(
            total=self.settings.max_posts,
            initial=min(self.report.total_downloaded, self.settings.max_posts),
            unit="post",
            disable=not self.settings.progress,
            dynamic_ncols=True,
        )
        try:
            for hashtag in hashtags:
                if self._enough():
                    self.report.stopped = "max_posts"
                    break
                self._walk_hashtag(hashtag)
            else:
                if self._enough():
                    self.report.stopped = "max_posts"
        except WaitBudgetExceeded as error:
            self.report.stopped, self.report.message = "max_wait", str(error)
        except NetworkUnreachable as error:
            self.report.stopped, self.report.message = "network", str(error)
        except LoginNeeded as error:
            self.report.stopped, self.report.message = "login", str(error)
        except instaloader.AbortDownloadException as error:
            # checkpoint_required, challenge_required, feedback_required: a person must look.
            self.report.stopped = "aborted"
            self.report.message = (
                f"Instagram stopped the scrape: {error}\nLog in to instagram.com in a browser as "
                f"{self.login_user or 'NAME'}, answer what it asks, then recreate the session.\n"
                + how_to_login(self.login_user, self.session_file)
            )
        finally:
            self._bar.close()
        return self.report

    def _walk_hashtag(self, hashtag: str) -> None:
        cursor = self.catalog.load_cursor(hashtag)
        if cursor is not None and cursor.done:
            log.info("#%s: walked to its end before (%d posts)", hashtag, cursor.posts_seen)
            return
        self._bar.set_description(f"#{hashtag}")
        try:
            posts = self._retry(f"opening #{hashtag}", lambda: self._open(hashtag))
        except instaloader.QueryReturnedNotFoundException as error:
            log.error("#%s: Instagram knows no such hashtag (%s); skipped", hashtag, error)
            self.report.hashtag_errors[hashtag] = f"not found ({error})"
            return
        self._thaw(posts, cursor)
        while not self._enough():
            post = self._retry(f"next page of #{hashtag}", lambda: next(posts, None))
            if post is None:
                self.catalog.save_cursor(hashtag, posts.freeze(), posts.total_index, done=True)
                log.info("#%s: walked to its end (%d posts)", hashtag, posts.total_index)
                return
            self._take(post, hashtag, posts)

    def _open(self, hashtag: str) -> instaloader.NodeIterator[instaloader.Post]:
        return instaloader.Hashtag.from_name(self.loader.context, hashtag).get_posts_resumable()

    def _thaw(self, posts: instaloader.NodeIterator, cursor: Cursor | None) -> None:
        """Continue where the last run stopped; a stale or foreign state means start afresh."""
        if cursor is None or cursor.frozen is None:
            return
        frozen = cursor.frozen
        restart = "walking from the newest post again (known posts are skipped)"
        if frozen.best_before and datetime.fromtimestamp(frozen.best_before) < datetime.now():
            log.warning("#%s: the saved position expired (~29 days); %s", cursor.hashtag, restart)
            return
        try:
            posts.thaw(frozen)
        except instaloader.InvalidArgumentException as error:
            log.warning("#%s: cannot resume (%s); %s", cursor.hashtag, error, restart)
            return
        log.info("#%s: resuming after %d posts", cursor.hashtag, frozen.total_index)

    def _take(self, post: instaloader.Post, hashtag: str, posts: instaloader.NodeIterator) -> None:
        """Record ``post`` (downloading it unless known) with the walk's position, atomically."""
        known = self.catalog.get(post.shortcode)
        if known is not None and known.status == "downloaded":
            with self.catalog.transaction():
                added = self.catalog.add_hashtag(post.shortcode, hashtag)
                self.catalog.save_cursor(hashtag, posts.freeze(), posts.total_index)
            self.report.known += 1
            self.report.hashtags_added += added
            return
        record = self._download(post, hashtag)
        # Files first, then the row: a recorded post's files exist.
        with self.catalog.transaction():
            self.catalog.upsert_post(record)
            self.catalog.save_cursor(hashtag, posts.freeze(), posts.total_index)
        if record.status == "downloaded":
            self.report.downloaded += 1
            self.report.total_downloaded += 1
            self._bar.update(1)
        else:
            self.report.failed += 1
            log.warning("post %s failed: %s", record.shortcode, record.error)
        self._bar.set_postfix(failed=self.report.failed, known=self.report.known, refresh=False)

    def _download(self, post: instaloader.Post, hashtag: str) -> CatalogPost:
        for attempt in range(1, self.settings.post_attempts + 1):
            try:
                record = self.settings.network.call(
                    f"downloading post {post.shortcode}",
                    lambda: download_post(self.loader, post, hashtag, self.out_dir, self.catalog),
                )
                self._failures_in_a_row = 0
                return record
            except Exception as error:
                self._raise_if_login(error)
                if not isinstance(error, POST_ERRORS):
                    raise  # unreachable, AbortDownloadException, a full disk, a bug: stop
                final = not isinstance(error, NETWORK_ERRORS) or _FINAL_STATUS.search(str(error))
                if final or attempt == self.settings.post_attempts:
                    return failed_record(post, hashtag, error)
                self._back_off(f"downloading post {post.shortcode} failed ({error})")
        raise AssertionError("unreachable: the last attempt returns")

    def _retry(self, what: str, request: Callable[[], T]) -> T:
        """``request()``, retried with backoff on network errors until the wait budget ends;
        one that cannot connect stops sooner (:class:`NetworkRetry`)."""
        while True:
            try:
                result = self.settings.network.call(what, request)
                self._failures_in_a_row = 0
                return result
            except Exception as error:
                self._raise_if_login(error)
                if not isinstance(error, NETWORK_ERRORS) or isinstance(
                    error, instaloader.QueryReturnedNotFoundException
                ):
                    raise
                self._back_off(f"{what} failed ({error})")

    def _back_off(self, reason: str) -> None:
        self._failures_in_a_row += 1
        exponent = min(self._failures_in_a_row - 1, 20)
        seconds = min(self.settings.backoff * 2**exponent, self.settings.backoff_max)
        self.budget.wait(seconds, reason)

    def _raise_if_login(self, error: BaseException) -> None:
        if is_login_error(error):
            raise LoginNeeded(
                f"Instagram wants a login: {error}\n"
                + how_to_login(self.login_user, self.session_file)
            ) from error

    def _enough(self) -> bool:
        return self.report.total_downloaded >= self.settings.max_posts
