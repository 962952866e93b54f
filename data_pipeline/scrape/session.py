"""Log in through instaloader's session file only, and explain how to make one when it is missing.

The session file is made once, interactively, by instaloader itself: ``instaloader -l NAME``
asks for the password and writes the session cookies to ``~/.config/instaloader/session-NAME``
(mode 0600). We only ever read that file: no password reaches our command line, config or logs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import instaloader
from instaloader.instaloader import get_default_session_filename

log = logging.getLogger(__name__)


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


def load_login(
    loader: instaloader.Instaloader,
    user: str | None,
    session_file: str | None = None,
    check: bool = True,
) -> None:
    """Load ``user``'s session into ``loader``; with ``user`` None stay anonymous.

    Args:
        check: ask Instagram whom the session belongs to (one request), failing early when it
            has expired.

    Raises:
        LoginNeeded: the session file is missing or unreadable, or Instagram no longer accepts it.
    """
    if not user:
        if session_file:
            raise LoginNeeded(
                f"login.session_file={session_file} needs login.user=NAME: the Instagram "
                "username the session belongs to."
            )
        log.warning("no login.user: scraping anonymously; Instagram serves hashtags to logins only")
        return
    path = session_path(user, session_file)
    if not path.is_file():
        missing = f"no Instagram session for {user} at {path}.\n"
        raise LoginNeeded(missing + how_to_login(user, None))
    try:
        loader.load_session_from_file(user, str(path))
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as error:
        # A pickle of something else, or truncated: instaloader's loader raises any of these.
        raise LoginNeeded(
            f"cannot read the session file {path} ({type(error).__name__}: {error}).\n"
            + how_to_login(user, session_file)
        ) from error
    log.info("loaded the Instagram session of %s from %s", user, path)
    if not check:
        return
    owner = loader.test_login()
    if owner is None:
        raise LoginNeeded(
            f"Instagram no longer accepts the session of {user} in {path} (expired or logged "
            "out).\n" + how_to_login(user, session_file)
        )
    if owner.lower() != user.lower():
        log.warning("the session in %s belongs to %s, not %s", path, owner, user)


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
