"""What a user sees when what they gave cannot work: a message in the page (``gr.Error``) that
says what to do, never a traceback; the server keeps serving.

Uploads arrive as Gradio's file records (the event runs with ``preprocess=False``, so Gradio
does not decode them itself) and are read here through ``miro.images``, whose guards (pixel cap,
full decode, EXIF, modes) every miro command shares.

Example::

    image = read_upload(upload, max_size=256)   # (3, H, W) in [0, 1], or gr.Error
    with shown_in_page():
        choose_styles(None, {7: 1.0}, names)    # StyleChoiceError → gr.Error(its message)
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import torch

from data_pipeline.manifest import DatasetNotFoundError
from miro.images import UnreadableImageError, is_readable, load_image
from miro.models.checkpoints import CheckpointError
from miro.retrieval.errors import RetrievalError
from miro.style.errors import StylizeError

# What our libraries raise for a user's mistake, each with a message that says what to change.
# ValueError: the dream's settings, layers and words (as `python -m miro.dream` reports them).
USER_ERRORS = (
    StylizeError,
    CheckpointError,
    RetrievalError,
    DatasetNotFoundError,
    UnreadableImageError,
    ValueError,
)
# What an unreadable upload was read as, and what to upload instead.
KINDS = {
    "image": ("an image", "a photo as JPEG, PNG or WebP"),
    "video": ("a video", "a video as MP4, MOV or WebM"),
}

Upload = Mapping[str, object]  # Gradio's FileData as a dict: path, orig_name, url, ...


@contextmanager
def shown_in_page() -> Iterator[None]:
    """Inside the block, a user error (``USER_ERRORS``) becomes ``gr.Error`` with its message."""
    try:
        yield
    except USER_ERRORS as err:
        raise gr.Error(str(err), print_exception=False) from None


def unreadable(upload: Upload, reason: object, kind: str = "image") -> gr.Error:
    """The message for an upload that cannot be read as ``kind`` (image, video), naming it by
    the user's file name, not by where Gradio keeps it."""
    name = upload.get("orig_name") or Path(str(upload["path"])).name
    reason = str(reason).removeprefix(f"{upload['path']}: ")
    what, instead = KINDS[kind]
    return gr.Error(
        f"{name} could not be read as {what} ({reason}). Upload {instead}.", print_exception=False
    )


def uploaded_image(upload: Upload) -> Path:
    """The uploaded file's path after a header check; ``gr.Error`` when it is not an image."""
    path = Path(str(upload["path"]))
    if not is_readable(path):
        raise unreadable(upload, "not an image file, or over the pixel limit")
    return path


def read_upload(upload: Upload, max_size: int | None) -> torch.Tensor:
    """The uploaded image ``(3, H, W)`` float in [0, 1], its long side at most ``max_size``;
    ``gr.Error`` naming the file when it does not decode."""
    try:
        return load_image(uploaded_image(upload), max_size=max_size)
    except UnreadableImageError as err:
        raise unreadable(upload, err.__cause__ or err) from None
