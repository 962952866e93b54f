"""What ``python -m miro.retrieve`` reports to a user as one message and a non-zero exit."""


class RetrievalError(Exception):
    """A mistake in what was asked (a key, a file, a word): the message says how to fix it."""


class IndexMissingError(RetrievalError):
    """No index where the query looked for one."""


class IndexMismatchError(RetrievalError):
    """An index built by another encoder (other weights or dimension) than the one queried."""


class UnknownWordsError(RetrievalError):
    """A text query none of whose words the text model knows."""

    def __init__(self, phrase: str, unknown: list[str], message: str) -> None:
        self.phrase = phrase
        self.unknown = unknown
        super().__init__(message)
