"""Errors a user can fix; the command line prints them without a traceback."""


class StylizeError(Exception):
    """Base of every error whose message tells the user what to change."""


class StyleChoiceError(StylizeError):
    """``style=`` or ``mix=`` names no style of the checkpoint."""


class InputError(StylizeError):
    """The input path is missing, holds no images, or no image could be read."""


class SettingsError(StylizeError):
    """A setting (strength, tile size, device, export format, ...) is out of its range."""
