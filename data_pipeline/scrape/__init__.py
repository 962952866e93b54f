"""Scrape Instagram hashtags into instaloader's folder layout plus a SQLite catalog, resumably.

``python -m data_pipeline.scrape hashtags=[joanmiro,miro] max_posts=200000 out=DIR login.user=NAME``
walks each hashtag's recent posts with instaloader's own classes (``Hashtag``, ``NodeIterator``,
``Instaloader.download_post``) and records each post in ``DIR/catalog.sqlite``
(:mod:`data_pipeline.catalog`). Modules: ``session`` (login via instaloader's session file),
``rate`` (rate-limit waits against a budget), ``network`` (a few quick tries when Instagram cannot
be reached, then a stop), ``download`` (one post), ``walk`` (the resumable walk), ``command``
(config → run → exit code).
"""

from data_pipeline.scrape.network import NetworkRetry, NetworkUnreachable
from data_pipeline.scrape.rate import BudgetedRateController, WaitBudget, WaitBudgetExceeded
from data_pipeline.scrape.session import LoginNeeded, find_session, load_login
from data_pipeline.scrape.walk import ScrapeReport, Walk, WalkSettings

__all__ = [
    "BudgetedRateController",
    "LoginNeeded",
    "NetworkRetry",
    "NetworkUnreachable",
    "ScrapeReport",
    "WaitBudget",
    "WaitBudgetExceeded",
    "Walk",
    "WalkSettings",
    "find_session",
    "load_login",
]
