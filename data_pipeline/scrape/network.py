"""A network that cannot be reached is no rate limit: a few quick retries, then a clean stop.

instaloader reports a failed request as a ``ConnectionException`` once its own
``max_connection_attempts`` are spent; the exception's ``__cause__``/``__context__`` chain keeps
what requests and urllib3 raised. When that chain says no connection was ever made (a DNS
failure, a refused connection, a connect timeout, a proxy that cannot be reached), waiting hours
as for a rate limit helps nothing. :class:`NetworkRetry` tries ``retries`` more times,
``backoff`` seconds apart, then raises :class:`NetworkUnreachable`, whose message names the host.
Every other error (a 429, a 500, a connection dropped mid-answer) passes through untouched.

Example::

    network = NetworkRetry(retries=3, backoff=5)
    hashtag = network.call("opening #miro", lambda: Hashtag.from_name(context, "miro"))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

log = logging.getLogger(__name__)
T = TypeVar("T")

# urllib3's errors for a connection that was never made: NewConnectionError and its
# NameResolutionError subclass are ConnectTimeoutErrors too; ProxyError wraps the proxy's own.
_NOT_CONNECTED = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ProxyError)


class NetworkUnreachable(Exception):
    """A host could not be reached, try after try; the message names it and the cause."""


@dataclass(frozen=True)
class NetworkRetry:
    """How often to retry a request that could not connect.

    Args:
        retries: tries after the first failed one before :class:`NetworkUnreachable`.
        backoff: seconds to wait before each of those tries.
    """

    retries: int = 3
    backoff: float = 5.0

    def __post_init__(self):
        if self.retries < 0 or self.backoff < 0:
            raise ValueError("network.retries and network.backoff must be >= 0")

    def call(self, what: str, request: Callable[[], T]) -> T:
        """``request()``, retried while it cannot connect; ``what`` says what it does, for the log.

        Raises:
            NetworkUnreachable: it could not connect ``retries + 1`` times in a row.
        """
        for attempt in range(self.retries + 1):
            try:
                return request()
            except Exception as error:
                where = unreachable(error)
                if where is None:
                    raise
                if attempt == self.retries:
                    raise NetworkUnreachable(
                        f"cannot reach {where} while {what} ({self.retries + 1} tries, "
                        f"{self.backoff:g} s apart)"
                    ) from error
                log.warning(
                    "%s: cannot reach %s; try %d of %d in %g s",
                    what,
                    where,
                    attempt + 2,
                    self.retries + 1,
                    self.backoff,
                )
                time.sleep(self.backoff)
        raise AssertionError("unreachable: the last try returns or raises")


def unreachable(error: BaseException) -> str | None:
    """What ``error`` could not reach, or None when it is no failure to connect.

    E.g. ``i.instagram.com through the proxy http://127.0.0.1:9 (ConnectionRefusedError:
    [Errno 111] Connection refused)``. A proxy's credentials are never part of it.
    """
    chain = list(_chain(error))
    if not any(isinstance(link, _NOT_CONNECTED) for link in chain):
        return None
    host = next(
        (
            urlsplit(link.request.url).hostname
            for link in chain
            if isinstance(link, requests.RequestException) and link.request is not None
        ),
        "Instagram",
    )
    proxy = next(filter(None, map(_proxy, chain)), None)
    through = f" through the proxy {proxy}" if proxy else ""
    cause = chain[-1]
    return f"{host}{through} ({type(cause).__name__}: {cause})"


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """``error``, then what caused it, explicitly or not, down to the first exception."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _proxy(error: BaseException) -> str | None:
    """``scheme://host:port`` of the proxy that urllib3 could not get through, if that failed."""
    if not isinstance(error, urllib3.exceptions.MaxRetryError):
        return None
    if not isinstance(error.reason, urllib3.exceptions.ProxyError) or error.pool is None:
        return None
    proxy = error.pool.proxy
    return f"{proxy.scheme}://{proxy.host}:{proxy.port}" if proxy else None
