"""Bag-of-words caption targets: the image network predicts the caption's words themselves.

Joulin, van der Maaten, Jabri, Vasilache, "Learning Visual Features from Large Weakly
Supervised Data" (ECCV 2016), and Li et al., "Learning Visual N-Grams from Web Data" (ICCV
2017): a vocabulary of the most frequent caption words, one output per word, and the image
learns the distribution of its caption's words. No text model stands between a word and the
picture, so the picture is the pivot between languages: ``star`` and ``estrella`` are two
outputs that both fire on star images, and a query in any language ranks every post.

Example::

    embedder = WordCountEmbedder(CaptionTokenizer(), vocabulary_size=2000).fit(train_captions)
    targets = embedder.transform(captions)  # (N, 2000) float32 word counts
    embedder.knows("estrella")              # True when it is among the kept words
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from gensim.corpora import Dictionary

from miro.text.targets import TextModelSummary, load_settings, save_settings
from miro.text.tokenize import CaptionTokenizer


class WordCountEmbedder:
    """Keep the most frequent words of the training captions (gensim ``Dictionary``) and map a
    caption to the counts of those words in it.

    The space has ``vocabulary_size`` dimensions whatever the data: a smaller vocabulary leaves
    the last dimensions unused (always zero), so the encoder's head size is known before the fit.
    A caption with no kept word is the zero vector, which every loss ignores.

    Args:
        tokenizer: caption → words; ``fit`` teaches it the training captions' words.
        vocabulary_size: the most frequent words kept (the encoder's output size).
        no_below: drop words in fewer captions than this.
        no_above: drop words in more than this fraction of captions.
    """

    def __init__(
        self,
        tokenizer: CaptionTokenizer,
        vocabulary_size: int = 2000,
        no_below: int = 5,
        no_above: float = 0.5,
    ) -> None:
        self.tokenizer = tokenizer
        self.vocabulary_size = vocabulary_size
        self.no_below = no_below
        self.no_above = no_above
        self.dictionary: Dictionary | None = None

    @classmethod
    def from_config(cls, num_topics: int, **params) -> "WordCountEmbedder":
        """Build from ``conf/text/words.yaml``, where the vocabulary size is ``num_topics``: the
        key that sizes every text space (the encoder's ``embed_dim`` reads it)."""
        return cls(vocabulary_size=num_topics, **params)

    @property
    def dim(self) -> int:
        return self.vocabulary_size

    def params(self) -> dict:
        """Everything that changes the fitted vocabulary, for cache keys and saving."""
        return {
            "vocabulary_size": self.vocabulary_size,
            "no_below": self.no_below,
            "no_above": self.no_above,
            "tokenizer": self.tokenizer.params(),
        }

    def fit(self, captions: Sequence[str]) -> "WordCountEmbedder":
        self.tokenizer.learn_vocabulary(captions)
        dictionary = Dictionary(self.tokenizer(caption) for caption in captions)
        dictionary.filter_extremes(
            no_below=self.no_below, no_above=self.no_above, keep_n=self.vocabulary_size
        )
        if len(dictionary) == 0:
            raise ValueError(
                f"no word survives the vocabulary filters (no_below={self.no_below}, "
                f"no_above={self.no_above}) on {len(captions)} captions; lower text.no_below "
                "or add captions"
            )
        self.dictionary = dictionary
        return self

    def knows(self, word: str) -> bool:
        """Whether ``word`` (already tokenized) is one of the kept words."""
        return word in self._fitted_dictionary().token2id

    def transform(self, captions: Sequence[str]) -> np.ndarray:
        """Word counts, shape ``(len(captions), vocabulary_size)``, float32; zero rows for
        captions with no kept word."""
        dictionary = self._fitted_dictionary()
        out = np.zeros((len(captions), self.vocabulary_size), dtype=np.float32)
        for row, caption in enumerate(captions):
            for word_id, count in dictionary.doc2bow(self.tokenizer(caption)):
                out[row, word_id] = count
        return out

    def word(self, index: int) -> str:
        """The word of output ``index``."""
        return self._fitted_dictionary()[index]

    def describe(self, n: int = 10, probes: Sequence[str] | None = None) -> TextModelSummary:
        """How many captions hold each probe word; by default the ``n`` most frequent words."""
        dictionary = self._fitted_dictionary()
        if probes is None:
            ranked = sorted(dictionary.dfs.items(), key=lambda item: -item[1])[:n]
            probes = [dictionary[word_id] for word_id, _ in ranked]
        rows = [
            [probe, dictionary.dfs.get(dictionary.token2id.get(probe, -1), 0)] for probe in probes
        ]
        return TextModelSummary(
            f"vocabulary: {len(dictionary)} words", ["word", "training captions"], rows
        )

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fitted_dictionary().save(str(directory / "dictionary.gensim"))
        save_settings(self, directory)

    @classmethod
    def load(cls, directory: Path) -> "WordCountEmbedder":
        embedder = load_settings(cls, directory)
        embedder.dictionary = Dictionary.load(str(directory / "dictionary.gensim"))
        return embedder

    def _fitted_dictionary(self) -> Dictionary:
        if self.dictionary is None:
            raise RuntimeError(
                "WordCountEmbedder is not fitted: call fit(captions) or load(directory)"
            )
        return self.dictionary
