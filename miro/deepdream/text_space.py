"""Words to a vector of the text space an encoder was trained into: the target of ``text()``.

The text model is the one fitted for training (e.g. ``miro.text.lda.TopicEmbedder``, where a
phrase becomes its topic distribution, as TextTopicNet's retrieval queries do), and the vector
goes through the training loss's ``prepare_targets``, as retrieval queries do, so it lies where
the encoder's ``to_text_space`` puts images. A word outside the vocabulary has no vector, so such
words fail loudly rather than dream toward nothing.

Example::

    vector = text_vector(model.text_model, "red star")    # torch.float32 (D,)
    objective = text(vector)
"""

from collections.abc import Callable

import numpy as np
import torch

from miro.deepdream.models import DreamModel


def text_vector(text_model, phrase: str, prepare_targets: Callable | None = None) -> torch.Tensor:
    """The text-space vector ``(D,)`` of ``phrase`` under ``text_model`` (``tokenizer``,
    ``knows``, ``transform``), mapped by ``prepare_targets`` (``(N, D)`` → ``(N, D)``) if given.

    Raises ``ValueError`` listing the words the text model does not know, or saying that the
    phrase has no content word left after tokenizing (stopwords, short words).
    """
    if text_model is None:
        raise ValueError("no text model: text objectives need a text-supervised encoder's")
    words = text_model.tokenizer(phrase)
    if not words:
        raise ValueError(
            f"{phrase!r} has no content word once tokenized (stopwords and words under "
            f"{getattr(text_model.tokenizer, 'min_length', '?')} letters are dropped)"
        )
    unknown = [word for word in words if not text_model.knows(word)]
    if unknown:
        raise ValueError(
            f"the text model does not know {', '.join(repr(w) for w in unknown)} (from "
            f"{phrase!r}); use words that occur in the training captions"
        )
    vectors = torch.from_numpy(np.asarray(text_model.transform([phrase]), dtype=np.float32))
    if prepare_targets is not None:
        vectors = prepare_targets(vectors).float()
    return vectors[0]


def model_text_vector(model: DreamModel, phrase: str) -> torch.Tensor:
    """``text_vector`` with the text model of a dream model, or why it has none."""
    if model.text_model is None:
        reason = model.text_model_error or (
            f"{type(model).__name__} has no text space; load a text-supervised encoder with "
            "miro.deepdream.text_encoder(ckpt_path)"
        )
        raise ValueError(f"cannot make a text objective: {reason}")
    return text_vector(model.text_model, phrase, model.prepare_text)
