"""Errors a user can fix in a video run; the commands print them without a traceback."""

from miro.images import UnreadableImageError


class UnreadableVideoError(UnreadableImageError):
    """A video file that is missing, corrupt, truncated or holds no video stream (its frames
    cannot be read, so it is an unreadable image too)."""


class VideoSettingsError(ValueError):
    """A video setting out of its range (``temporal.weight``, ``temporal.flow``, ...)."""
