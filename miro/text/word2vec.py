"""Word2vec caption embeddings: the supervisory signal of "Learning to Learn from Web Data".

Gomez et al., ECCV-W 2018: a word2vec model (Mikolov et al., 2013) is fitted on the training
captions, and a caption becomes the mean, or the TF-IDF weighted mean, of its words' vectors;
the image network learns to predict it. They used 400-d vectors, a window of 8, words seen at
least 5 times and 25 epochs (our defaults); InstaBarcelona used 300-d per language.

Example::

    embedder = WordVectorEmbedder(CaptionTokenizer(), vector_size=400).fit(train_captions)
    targets = embedder.transform(captions)  # (N, 400) float32, not normalized
    print(embedder.describe(probes=["star", "moon"]))  # their nearest words
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.phrases import FrozenPhrases, Phrases

from miro.text.targets import TextModelSummary, load_settings, save_settings
from miro.text.tokenize import CaptionTokenizer

POOLINGS = ("mean", "tfidf")


class WordVectorEmbedder:
    """Fit word2vec with gensim and map a caption to the pooled vectors of its known words.

    A caption with no word in the vocabulary (every word rarer than ``min_count``) becomes the
    zero vector: it has no text to learn from, and every loss in ``miro.losses`` ignores a
    post whose target is all zeros (``fit_text_targets`` logs how many there are).

    ``tfidf`` pooling weighs each occurrence of a word by its smoothed inverse document
    frequency over the training captions, ``ln((1 + N) / (1 + df)) + 1`` (always > 0), so rare,
    specific words count more than words every caption has.

    Args:
        tokenizer: caption → words; ``fit`` teaches it the training captions' words.
        vector_size: size of the word vectors (the encoder's output size).
        window: context words on each side.
        min_count: words seen fewer times are ignored.
        epochs: passes over the captions.
        skip_gram: skip-gram instead of CBOW (gensim's default, the paper's).
        pooling: ``mean`` or ``tfidf`` weighted mean of a caption's word vectors.
        phrases: join frequent bigrams into one word (``ice_cream``) with gensim ``Phrases``.
        phrase_min_count: bigrams seen fewer times are never joined.
        phrase_threshold: gensim's score threshold for joining a bigram (higher: fewer).
        workers: training threads; 1 is reproducible, more are faster.
        seed: random state of the fit.
    """

    def __init__(
        self,
        tokenizer: CaptionTokenizer,
        vector_size: int = 400,
        window: int = 8,
        min_count: int = 5,
        epochs: int = 25,
        skip_gram: bool = False,
        pooling: str = "mean",
        phrases: bool = False,
        phrase_min_count: int = 5,
        phrase_threshold: float = 10.0,
        workers: int = 1,
        seed: int = 0,
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"text.pooling={pooling!r}; choose among {list(POOLINGS)}")
        self.tokenizer = tokenizer
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.skip_gram = skip_gram
        self.pooling = pooling
        self.phrases = phrases
        self.phrase_min_count = phrase_min_count
        self.phrase_threshold = phrase_threshold
        self.workers = workers
        self.seed = seed
        self.vectors: KeyedVectors | None = None
        self.idf: np.ndarray | None = None  # (V,) aligned with self.vectors' index
        self.bigrams: FrozenPhrases | None = None

    @classmethod
    def from_config(cls, num_topics: int, **params) -> "WordVectorEmbedder":
        """Build from ``conf/text/word2vec.yaml``, where the vector size is ``num_topics``: the
        key that sizes every text space (the encoder's ``embed_dim`` and the experiments set
        it)."""
        return cls(vector_size=num_topics, **params)

    @property
    def dim(self) -> int:
        return self.vector_size

    def params(self) -> dict:
        """Everything that changes the fitted model or the targets, for cache keys and saving."""
        return {
            "vector_size": self.vector_size,
            "window": self.window,
            "min_count": self.min_count,
            "epochs": self.epochs,
            "skip_gram": self.skip_gram,
            "pooling": self.pooling,
            "phrases": self.phrases,
            "phrase_min_count": self.phrase_min_count,
            "phrase_threshold": self.phrase_threshold,
            "workers": self.workers,
            "seed": self.seed,
            "tokenizer": self.tokenizer.params(),
        }

    def fit(self, captions: Sequence[str]) -> "WordVectorEmbedder":
        self.tokenizer.learn_vocabulary(captions)
        documents = [self.tokenizer(caption) for caption in captions]
        self.bigrams = None
        if self.phrases:
            self.bigrams = Phrases(
                documents, min_count=self.phrase_min_count, threshold=self.phrase_threshold
            ).freeze()
            documents = [self.bigrams[document] for document in documents]
        model = Word2Vec(
            vector_size=self.vector_size,
            window=self.window,
            min_count=self.min_count,
            sg=int(self.skip_gram),
            workers=self.workers,
            seed=self.seed,
        )
        model.build_vocab(documents)
        if not model.wv.index_to_key:
            raise ValueError(
                f"no word is seen text.min_count={self.min_count} times in {len(documents)} "
                "captions; lower text.min_count or add captions"
            )
        model.train(documents, total_examples=model.corpus_count, epochs=self.epochs)
        self.vectors = model.wv
        document_frequency = Counter(word for document in documents for word in set(document))
        frequencies = np.array([document_frequency[w] for w in model.wv.index_to_key], np.float64)
        self.idf = np.log((1 + len(documents)) / (1 + frequencies)) + 1
        return self

    def words(self, caption: str) -> list[str]:
        """The caption's tokens after phrase joining, known or not."""
        tokens = self.tokenizer(caption)
        return list(self.bigrams[tokens]) if self.bigrams is not None else tokens

    def knows(self, word: str) -> bool:
        """Whether ``word`` (already tokenized) has a vector."""
        return word in self._fitted_vectors().key_to_index

    def transform(self, captions: Sequence[str]) -> np.ndarray:
        """Pooled word vectors, shape ``(len(captions), vector_size)``, float32, raw scale
        (not normalized); zero rows for captions with no known word."""
        vectors = self._fitted_vectors()
        out = np.zeros((len(captions), self.vector_size), dtype=np.float32)
        for row, caption in enumerate(captions):
            index = [vectors.key_to_index[w] for w in self.words(caption) if w in vectors]
            if not index:
                continue
            weights = self.idf[index] if self.pooling == "tfidf" else np.ones(len(index))
            out[row] = weights @ vectors.vectors[index] / weights.sum()
        return out

    def describe(self, n: int = 10, probes: Sequence[str] | None = None) -> TextModelSummary:
        """The ``n`` nearest words (cosine) of each probe word; by default of the 10 most
        frequent words. An unknown probe gets an empty row."""
        vectors = self._fitted_vectors()
        probes = list(probes) if probes is not None else vectors.index_to_key[:10]
        rows = []
        for probe in probes:
            words = self.words(probe)
            word = words[0] if len(words) == 1 else probe
            if word in vectors:
                nearest = vectors.most_similar(word, topn=n)
                rows.append([probe, ", ".join(f"{w} ({s:.2f})" for w, s in nearest)])
            else:
                rows.append([probe, "(not in the vocabulary)"])
        return TextModelSummary("word2vec nearest words", ["word", "nearest words"], rows)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fitted_vectors().save(str(directory / "vectors.kv"))
        np.save(directory / "idf.npy", self.idf)
        if self.bigrams is not None:
            self.bigrams.save(str(directory / "phrases.gensim"))
        save_settings(self, directory)

    @classmethod
    def load(cls, directory: Path) -> "WordVectorEmbedder":
        embedder = load_settings(cls, directory)
        embedder.vectors = KeyedVectors.load(str(directory / "vectors.kv"))
        embedder.idf = np.load(directory / "idf.npy")
        if embedder.phrases:
            embedder.bigrams = FrozenPhrases.load(str(directory / "phrases.gensim"))
        return embedder

    def _fitted_vectors(self) -> KeyedVectors:
        if self.vectors is None or self.idf is None:
            raise RuntimeError(
                "WordVectorEmbedder is not fitted: call fit(captions) or load(directory)"
            )
        return self.vectors
