"""Command-line plumbing shared by the entry points (``python -m miro.X``, ``python -m
data_pipeline.X``).

``exit_on`` turns the errors a user can fix (a missing file, a bad key or value) into one line,
``error: <what to do>`` on stderr, and exit status 2, with no traceback; any other exception
is a bug and keeps its traceback::

    @hydra.main(version_base="1.3", config_path="../conf", config_name="stylize")
    def main(cfg):
        with exit_on(StylizeError, CheckpointError, DeviceError):
            print(run(cfg))

Hydra's override grammar reads unquoted values as ASCII only, so ``words=étoile`` stops in its
lexer (``LexerNoViableAltException``) although our users query in Spanish, Catalan and French.
``quote_non_ascii`` rewrites such arguments into Hydra's quoted form before Hydra sees them.

Example::

    quote_non_ascii(["query", "words=étoile", "queries.star=[star,étoile]", "-m"])
    # ['query', "words='étoile'", "queries.star=[star,'étoile']", '-m']
"""

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

# Hydra's flags that take the next argument as their value: that value is not an override.
VALUE_FLAGS = frozenset(
    {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn"}
    | {"--config-dir", "-cd", "--experimental-rerun", "--info", "-i"}
)
QUOTES = "'\""
OPENING, CLOSING = "([{", ")]}"
# Hydra's escapes in unquoted values (OverrideLexer's ESC): `\,` is a comma, `\\` a backslash.
UNQUOTED_ESCAPE = re.compile(r"\\([\\()\[\]{}:=, \t])")
CALL = re.compile(r"([A-Za-z_][\w-]*)\((.*)\)", re.DOTALL)
USER_ERROR_STATUS = 2


@contextmanager
def exit_on(*user_errors: type[BaseException]) -> Iterator[None]:
    """Inside the block, an exception of one of ``user_errors`` (or one whose ``__cause__``
    chain holds one: Hydra's ``instantiate`` wraps what a constructor raises) exits with status
    2 after printing ``error: <message>`` to stderr; other exceptions pass unchanged."""
    try:
        yield
    except Exception as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, user_errors):
            cause = cause.__cause__
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        raise SystemExit(USER_ERROR_STATUS) from None


def quote_non_ascii(arguments: Sequence[str]) -> list[str]:
    """The command line with each ``key=value`` whose value holds non-ASCII characters in
    Hydra's quoted form: ``words=étoile`` → ``words='étoile'``.

    Lists, dicts, sweeps and sweep functions keep their structure, their elements quoted
    (``k=[a,é]`` → ``k=[a,'é']``; ``k=é,a`` stays a sweep under ``-m``; ``choice(é,a)`` parses,
    but Hydra's sweeper hands its elements to the jobs unquoted, so sweep accented words in the
    ``k=é,a`` form). Flags (``--help``,
    ``-m``, ``-cn NAME``), ``+key=``/``++key=``/``~key`` prefixes, ASCII arguments and arguments
    Hydra already parses pass unchanged; so does a rewrite Hydra would still refuse, so that
    Hydra's own message reaches the user.
    """
    rewritten, flag_value = [], False
    for argument in arguments:
        if flag_value or argument.startswith("-") or "=" not in argument or argument.isascii():
            rewritten.append(argument)
        else:
            rewritten.append(_quoted_override(argument))
        flag_value = argument in VALUE_FLAGS
    return rewritten


def hydra_quoted(text: str) -> str:
    """``text`` as a Hydra quoted string that parses back to ``text`` exactly.

    Inside quotes Hydra unescapes only the enclosing quote and the backslashes right before it
    (or before the closing quote), so those are the ones escaped.
    """
    quote = "'" if "'" not in text or '"' in text else '"'
    escaped = re.sub(
        rf"(\\*)({quote}|\Z)",
        lambda m: m[1] * 2 + ("\\" + quote if m[2] else ""),
        text,
    )
    return f"{quote}{escaped}{quote}"


def _quoted_override(argument: str) -> str:
    if _parses(argument):
        return argument
    key, value = argument.split("=", 1)
    quoted = f"{key}={_quoted_value(value)}"
    return quoted if _parses(quoted) else argument


def _parses(override: str) -> bool:
    try:
        OverridesParser.create().parse_override(override)
    except HydraException:
        return False
    return True


def _quoted_value(value: str) -> str:
    """A value's top-level elements (one, or a comma sweep), each quoted where it must be."""
    return ",".join(_quoted_element(element) for element in _split(value, ","))


def _quoted_element(element: str) -> str:
    text = element.strip()
    if text.isascii() or _is_quoted(text):
        return element
    if text[0] + text[-1] in ("[]", "{}"):
        items = _split(text[1:-1], ",")
        if text[0] == "[":
            return "[" + ",".join(_quoted_element(item) for item in items) + "]"
        return "{" + ",".join(_quoted_pair(item, ":") for item in items) + "}"
    if call := CALL.fullmatch(text):  # a sweep function: choice(a,é), glob(*é*)
        name, inner = call.groups()
        return f"{name}(" + ",".join(_quoted_pair(item, "=") for item in _split(inner, ",")) + ")"
    return hydra_quoted(UNQUOTED_ESCAPE.sub(r"\1", text))


def _quoted_pair(item: str, separator: str) -> str:
    """``key:value`` of a dict or ``name=value`` of a function call, its value quoted; a lone
    value (a positional argument) quoted as it is."""
    parts = _split(item, separator, maxsplit=1)
    if len(parts) == 1 or not parts[0].strip().isidentifier():
        return _quoted_element(item)
    return f"{parts[0]}{separator}{_quoted_element(parts[1])}"


def _is_quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] in QUOTES and _quote_end(text, 0) == len(text) - 1


def _quote_end(text: str, start: int) -> int:
    """The position of the quote closing the one at ``start`` (backslash-escaped quotes
    skipped), or -1."""
    position = start + 1
    while position < len(text):
        if text[position] == "\\":
            position += 2
            continue
        if text[position] == text[start]:
            return position
        position += 1
    return -1


def _split(text: str, separator: str, maxsplit: int = -1) -> list[str]:
    """``text`` split at ``separator`` outside brackets, escapes and quoted elements (a quote
    opens a quoted string only at an element's start, as ``l'œil`` holds a plain apostrophe)."""
    parts, start, depth, position = [], 0, 0, 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char in QUOTES and not text[start:position].strip():
            end = _quote_end(text, position)
            position = len(text) if end < 0 else end + 1
            continue
        if char in OPENING:
            depth += 1
        elif char in CLOSING:
            depth = max(0, depth - 1)
        elif char == separator and depth == 0 and maxsplit != len(parts):
            parts.append(text[start:position])
            start = position + 1
        position += 1
    return [*parts, text[start:]]
