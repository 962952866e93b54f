"""Log in through instaloader's session file only, and explain how to make one when it is missing.

The session file is made once, interactively, by instaloader itself: ``instaloader -l NAME``
asks for the password and writes the session cookies to ``~/.config/instaloader/session-NAME``
(mode 0600). We only ever read that file: no password reaches our command line, config or logs.
Instagram shows hashtags to logged-in accounts only, so without ``login.user`` the scrape stops
before its first request, unless ``login.anonymous=true`` asks to try without an account.
"""

from __future__ import annotations

import logging
from pathlib import Path

import instaloader
from instaloader.instaloader import get_default_session_filename

from data_pipeline.scrape.network import unreachable

log = logging.getLogger(__name__)
LOGIN_QUERY = "d6f4427fbe92d846298cf93df0b937d3"  # whom a session belongs to, as test_login asks


class LoginNeeded(Exception):
    """Instagram wants a (valid) login; the message says how to get one."""


def session_path(user: str, session_file: str | None) -> Path:
    """Where the session of ``user`` is read from: ``session_file`` or instaloader's default."""
    if session_file:
        return Path(session_file).expanduser()
    return Path(get_default_session_filename(user))


def how_to_login(user: str | None, session_file: str | None) -> str:
    """The steps that create a session file and point the scraper at it."""
    name = user or "NAME"
    default = Path(get_default_session_filename(name))
    lines = [
        f"Create a session once with `instaloader -l {name}` (it asks for the password and",
        f"writes the session to {default}), then run again with login.user={name}.",
        "A session file kept elsewhere: login.session_file=PATH "
        f"(e.g. `instaloader -l {name} --sessionfile PATH`).",
    ]
    return "\n".join(lines)


def find_session(
    user: str | None, session_file: str | None, anonymous: bool = False
) -> Path | None:
    """The session file to log in with, or None to go on anonymously; asks no network.

    Args:
        anonymous: without ``user``, go on without a login instead of stopping.

    Raises:
        LoginNeeded: no ``user`` (and not ``anonymous``), or no session file for ``user``.
    """
    if not user:
        if session_file:
            raise LoginNeeded(
                f"login.session_file={session_file} needs login.user=NAME: the Instagram "
                "username the session belongs to."
            )
        if not anonymous:
            raise LoginNeeded(
                "no login.user: Instagram shows hashtags to logged-in accounts only.\n"
                + how_to_login(None, None)
                + "\nTo try without an account anyway (Instagram mostly refuses): "
                "login.anonymous=true."
            )
        log.warning("login.anonymous=true: scraping without a login; Instagram mostly refuses")
        return None
    path = session_path(user, session_file)
    if not path.is_file():
        missing = f"no Instagram session for {user} at {path}.\n"
        raise LoginNeeded(missing + how_to_login(user, None))
    return path


def load_login(loader: instaloader.Instaloader, user: str, path: Path, check: bool = True) -> None:
    """Load ``user``'s session from ``path`` (see :func:`find_session`) into ``loader``.

    Args:
        check: ask Instagram whom the session belongs to (one request), failing early when it
            has expired.

    Raises:
        LoginNeeded: the session file is unreadable, or Instagram no longer accepts it.
    """
    try:
        loader.load_session_from_file(user, str(path))
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as error:
        # A pickle of something else, or truncated: instaloader's loader raises any of these.
        raise LoginNeeded(
            f"cannot read the session file {path} ({type(error).__name__}: {error}).\n"
            + how_to_login(user, str(path))
        ) from error
    log.info("loaded the Instagram session of %s from %s", user, path)
    if not check:
        return
    owner = session_owner(loader)
    if owner is None:
        raise LoginNeeded(
            f"Instagram no longer accepts the session of {user} in {path} (expired or logged "
            "out).\n" + how_to_login(user, str(path))
        )
    if owner.lower() != user.lower():
        log.warning("the session in %s belongs to %s, not %s", path, owner, user)


def session_owner(loader: instaloader.Instaloader) -> str | None:
    """The username Instagram says the loaded session belongs to; None when it refuses it.

    As ``Instaloader.test_login``, except that a request that could not connect is raised (for
    :class:`~data_pipeline.scrape.network.NetworkRetry`): no network must not read as "expired".
    """
    try:
        data = loader.context.graphql_query(LOGIN_QUERY, {})
    except (instaloader.AbortDownloadException, instaloader.ConnectionException) as error:
        if unreachable(error) is not None:
            raise
        log.error("checking the session failed: %s", error)
        return None
    user = data["data"]["user"]
    return user["username"] if user is not None else None


def is_login_error(error: BaseException) -> bool:
    """Whether ``error`` (or its cause) means Instagram wants a login or a fresh session.

    instaloader reports a 401/403 ``login_required`` answer as a ``ConnectionException`` whose
    message quotes Instagram's JSON, and a redirect to the login page as
    ``LoginRequiredException`` (anonymous) or ``AbortDownloadException`` (logged in).
    """
    while error is not None:
        if isinstance(error, instaloader.LoginRequiredException | instaloader.LoginException):
            return True
        text = str(error)
        if "login_required" in text or "Redirected to login page" in text:
            return True
        error = error.__cause__ or error.__context__
    return False
