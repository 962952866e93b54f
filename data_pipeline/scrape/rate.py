"""Waiting on Instagram's rate limits: every wait is logged and counted against ``max_wait``.

instaloader decides the waits: its ``RateController`` paces requests per sliding window and
answers a 429 with a long pause (about 11 minutes for GraphQL, 30 for the iPhone API). Our
subclass only routes each pause through a :class:`WaitBudget`, which logs it and, once the total
would pass ``max_wait`` seconds, raises :class:`WaitBudgetExceeded` so the run stops with its
state saved. The scraper's own backoff after repeated errors goes through the same budget.

``time_scale`` shrinks every real sleep (tests use 1e-4) while the budget and the log count the
seconds asked for. instaloader's clock keeps running in real time, so after a scaled 429 pause it
still asks for the rest of that pause before each further request: the budget counts those too.

Example::

    budget = WaitBudget(max_wait=6 * 3600)
    loader = instaloader.Instaloader(
        rate_controller=lambda context: BudgetedRateController(context, budget)
    )
"""

from __future__ import annotations

import logging
import time

import instaloader

log = logging.getLogger(__name__)


class WaitBudgetExceeded(Exception):
    """Waiting any longer would pass ``max_wait``: stop, the catalog already holds the state."""


class WaitBudget:
    """Total seconds a run may spend waiting on rate limits and backoff.

    Args:
        max_wait: seconds of waiting allowed in total; a wait that would pass it is not begun.
        time_scale: real sleep = requested seconds * time_scale (1 in real runs).
    """

    def __init__(self, max_wait: float, time_scale: float = 1.0):
        if max_wait < 0 or time_scale < 0:
            raise ValueError("max_wait and time_scale must be >= 0")
        self.max_wait = max_wait
        self.time_scale = time_scale
        self.spent = 0.0  # seconds waited, as asked for (before time_scale)
        self.waits = 0

    def wait(self, seconds: float, reason: str) -> None:
        """Wait ``seconds`` (scaled), logging why.

        Raises:
            WaitBudgetExceeded: the wait would take the total past ``max_wait``.
        """
        if seconds <= 0:
            return
        if self.spent + seconds > self.max_wait:
            raise WaitBudgetExceeded(
                f"{reason}: Instagram asks for another {seconds:.0f} s of waiting, but "
                f"{self.spent:.0f} s of max_wait={self.max_wait:.0f} s are already spent"
            )
        self.spent += seconds
        self.waits += 1
        log.warning(
            "%s: waiting %.0f s (%.0f s of max_wait=%.0f s spent)",
            reason,
            seconds,
            self.spent,
            self.max_wait,
        )
        time.sleep(seconds * self.time_scale)


class BudgetedRateController(instaloader.RateController):
    """instaloader's rate controller, waiting through a :class:`WaitBudget`."""

    def __init__(self, context: instaloader.InstaloaderContext, budget: WaitBudget):
        super().__init__(context)
        self.budget = budget
        self._reason = "pacing requests (instaloader's sliding window)"

    def sleep(self, secs: float) -> None:
        self.budget.wait(secs, self._reason)

    def handle_429(self, query_type: str) -> None:
        self._reason = f"HTTP 429 Too Many Requests ({query_type})"
        try:
            super().handle_429(query_type)
        finally:
            self._reason = "pacing requests (instaloader's sliding window)"
