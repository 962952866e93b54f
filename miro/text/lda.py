"""LDA topic embeddings of captions: the supervisory signal of TextTopicNet.

Gomez et al., "Self-supervised learning of visual features through embedding images into text
topic spaces", CVPR 2017: a caption becomes its dense topic distribution under an LDA model
(Blei et al., 2003) fitted on the training captions, and the image network learns to predict it.

Example::

    embedder = TopicEmbedder(CaptionTokenizer(), num_topics=40).fit(train_captions)
    targets = embedder.transform(captions)  # (N, 40) float32, rows sum to 1
    print(embedder.describe())               # the top words of each topic
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from gensim.corpora import Dictionary
from gensim.models import LdaModel, LdaMulticore

from miro.text.targets import TextModelSummary, load_settings, save_settings
from miro.text.tokenize import CaptionTokenizer


class TopicEmbedder:
    """Fit an LDA topic model with gensim and map captions to topic distributions.

    ``fit`` first teaches the tokenizer the training captions' words (for hashtag splitting);
    that vocabulary is saved and loaded with the model. A caption with no word in the filtered
    vocabulary becomes the zero vector (not the prior's topic mixture, which says nothing about
    it): every loss in ``miro.losses`` ignores such posts.

    Args:
        tokenizer: caption → words.
        num_topics: size of the topic space (the encoder's output size).
        passes: passes over the corpus while fitting.
        iterations: inference iterations per document.
        no_below: drop words in fewer captions than this.
        no_above: drop words in more than this fraction of captions.
        keep_n: keep at most this many words, the most frequent.
        chunksize: documents per training chunk.
        workers: 1 fits with ``LdaModel`` (reproducible); more uses ``LdaMulticore``.
        seed: random state of the fit.
    """

    def __init__(
        self,
        tokenizer: CaptionTokenizer,
        num_topics: int = 40,
        passes: int = 1,
        iterations: int = 50,
        no_below: int = 5,
        no_above: float = 0.5,
        keep_n: int = 100_000,
        chunksize: int = 5000,
        workers: int = 1,
        seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.num_topics = num_topics
        self.passes = passes
        self.iterations = iterations
        self.no_below = no_below
        self.no_above = no_above
        self.keep_n = keep_n
        self.chunksize = chunksize
        self.workers = workers
        self.seed = seed
        self.dictionary: Dictionary | None = None
        self.lda: LdaModel | None = None

    @property
    def dim(self) -> int:
        return self.num_topics

    def params(self) -> dict:
        """Everything that changes the fitted model, for cache keys and saving."""
        return {
            "num_topics": self.num_topics,
            "passes": self.passes,
            "iterations": self.iterations,
            "no_below": self.no_below,
            "no_above": self.no_above,
            "keep_n": self.keep_n,
            "chunksize": self.chunksize,
            "workers": self.workers,
            "seed": self.seed,
            "tokenizer": self.tokenizer.params(),
        }

    def fit(self, captions: Sequence[str]) -> "TopicEmbedder":
        self.tokenizer.learn_vocabulary(captions)
        documents = [self.tokenizer(caption) for caption in captions]
        dictionary = Dictionary(documents)
        dictionary.filter_extremes(
            no_below=self.no_below, no_above=self.no_above, keep_n=self.keep_n
        )
        if len(dictionary) == 0:
            raise ValueError(
                f"no word survives the vocabulary filters (no_below={self.no_below}, "
                f"no_above={self.no_above}) on {len(documents)} captions; lower text.no_below "
                "or add captions"
            )
        corpus = [dictionary.doc2bow(document) for document in documents]
        common = {
            "corpus": corpus,
            "id2word": dictionary,
            "num_topics": self.num_topics,
            "passes": self.passes,
            "iterations": self.iterations,
            "chunksize": self.chunksize,
            "random_state": self.seed,
        }
        if self.workers > 1:
            self.lda = LdaMulticore(workers=self.workers, **common)
        else:
            self.lda = LdaModel(**common)
        self.dictionary = dictionary
        return self

    def knows(self, word: str) -> bool:
        """Whether ``word`` (already tokenized) is in the fitted vocabulary."""
        return word in self._fitted_dictionary().token2id

    def transform(self, captions: Sequence[str]) -> np.ndarray:
        """Topic distributions, shape ``(len(captions), num_topics)``, float32, rows sum to 1;
        zero rows for captions with no known word. A caption's row depends on it alone."""
        dictionary = self._fitted_dictionary()
        out = np.zeros((len(captions), self.num_topics), dtype=np.float32)
        for row, caption in enumerate(captions):
            bow = dictionary.doc2bow(self.tokenizer(caption))
            if not bow:
                continue
            # gensim starts inference from a random guess: the same seed, the same topics.
            self.lda.random_state.seed(self.seed)
            for topic, probability in self.lda.get_document_topics(bow, minimum_probability=0.0):
                out[row, topic] = probability
        return out

    def top_words(self, n: int = 10) -> list[list[str]]:
        """The ``n`` most probable words of each topic."""
        self._fitted_dictionary()
        return [
            [word for word, _ in self.lda.show_topic(topic, topn=n)]
            for topic in range(self.num_topics)
        ]

    def describe(self, n: int = 10, probes: Sequence[str] | None = None) -> TextModelSummary:
        """The ``n`` top words of every topic, one row a topic (``probes`` is unused: topics
        describe themselves)."""
        rows = [[topic, " ".join(words)] for topic, words in enumerate(self.top_words(n))]
        return TextModelSummary("LDA topics", ["topic", "top words"], rows)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fitted_dictionary().save(str(directory / "dictionary.gensim"))
        self.lda.save(str(directory / "lda.gensim"))
        save_settings(self, directory)

    @classmethod
    def load(cls, directory: Path) -> "TopicEmbedder":
        embedder = load_settings(cls, directory)
        embedder.dictionary = Dictionary.load(str(directory / "dictionary.gensim"))
        embedder.lda = LdaModel.load(str(directory / "lda.gensim"))
        return embedder

    def _fitted_dictionary(self) -> Dictionary:
        if self.dictionary is None or self.lda is None:
            raise RuntimeError("TopicEmbedder is not fitted: call fit(captions) or load(directory)")
        return self.dictionary
