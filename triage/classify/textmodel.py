"""Pure-Python inference for the local ticket classifier.

The model is a linear classifier over two L2-normalised TF-IDF blocks (word 1-2-grams and
character 2-5-grams inside word boundaries, sublinear tf), with probabilities from a
temperature-scaled softmax over the linear scores. It is trained by ``triage.train`` (scikit-learn,
training only) and shipped as a small JSON artifact; this module must not import numpy or sklearn.

``normalize`` and ``analyze`` are the single source of truth for text processing: the trainer builds
its feature matrices from ``analyze`` so training and inference see exactly the same features.

Artifact layout (``format`` = ``FORMAT``)::

    {"format": ..., "labels": [L names], "intercept": [L floats], "temperature": T,
     "weight_scale": s,                       # stored weights are integers; real weight = int * s
     "blocks": {"word": {"vocab": {feature: [w_0, ..., w_L-1, idf]}},
                "char": {"vocab": {...}}},
     "metadata": {"threshold": ..., "trained_on": ..., "version": ...}}
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import operator
import os
import re
import unicodedata
from collections import Counter

FORMAT = "triage.textmodel/1"
BLOCKS = ("word", "char")
MAX_CHARS = 4000
CHAR_NGRAMS = (2, 5)

_URL = re.compile(r"(?:https?://|www\.)\S+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\d+")
_NON_WORD = re.compile(r"[\W_]+")


def ticket_text(title: str | None, description: str | None) -> str:
    """One text from a ticket's title and description, joined the same way for training and runtime."""
    parts = (part.strip() for part in (title or "", description or ""))
    return "\n".join(part for part in parts if part)


def normalize(text: str) -> str:
    """Canonical form of a ticket text: NFKC, case-folded, URLs/e-mails/numbers masked,
    punctuation removed, single spaces, at most ``MAX_CHARS`` characters (cut at a word boundary)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _URL.sub(" url ", text)
    text = _EMAIL.sub(" email ", text)
    text = _DIGITS.sub("0", text)
    text = _NON_WORD.sub(" ", text).strip()
    if len(text) > MAX_CHARS:
        cut = text[: MAX_CHARS + 1]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut[:MAX_CHARS]
    return text


def _char_ngrams(word: str) -> list[str]:
    padded = f" {word} "
    low, high = CHAR_NGRAMS
    return [padded[i : i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)]


def analyze(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """Raw feature counts of a ticket: (word 1-2-grams, char_wb n-grams)."""
    tokens = normalize(text).split()
    words = Counter(tokens)
    chars: Counter[str] = Counter()
    for word, count in words.items():
        for gram in _char_ngrams(word):
            chars[gram] += count
    words.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    return dict(words), dict(chars)


def softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


class TextModel:
    """A trained classifier loaded from a JSON (or JSON.gz) artifact."""

    labels: tuple[str, ...]
    metadata: dict

    def __init__(self, artifact: dict) -> None:
        if artifact.get("format") != FORMAT:
            raise ValueError(f"unsupported model format {artifact.get('format')!r}, expected {FORMAT!r}")
        self.labels = tuple(artifact["labels"])
        self.metadata = dict(artifact.get("metadata", {}))
        self._intercept = [float(x) for x in artifact["intercept"]]
        self._temperature = float(artifact["temperature"])
        self._scale = float(artifact["weight_scale"])
        self._vocabs = [artifact["blocks"][name]["vocab"] for name in BLOCKS]
        width = len(self.labels) + 1  # a vocabulary row is one weight per label, then the idf
        if len(self._intercept) != len(self.labels) or any(
            len(next(iter(vocab.values()), [0] * width)) != width for vocab in self._vocabs
        ):
            raise ValueError("model artifact is inconsistent: rows and labels differ in length")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextModel:
        opener = gzip.open if os.fspath(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def scores(self, text: str) -> list[float]:
        """Linear decision scores, one per label (before temperature and softmax)."""
        scores = list(self._intercept)
        for vocab, counts in zip(self._vocabs, analyze(text), strict=True):
            values, rows = [], []
            for feature, count in counts.items():
                row = vocab.get(feature)  # [w_0 .. w_L-1, idf]
                if row is not None:
                    values.append(row[-1] * (1.0 + math.log(count)) if count > 1 else row[-1])
                    rows.append(row)
            if not rows:
                continue
            unit = self._scale / math.sqrt(sum(map(operator.mul, values, values)))
            # columns of the found rows, one per label (zip with range drops the trailing idf column)
            for j, column in zip(range(len(scores)), zip(*rows, strict=True), strict=False):
                scores[j] += unit * sum(map(operator.mul, values, column))
        return scores

    def predict_proba(self, text: str) -> dict[str, float]:
        scaled = [s / self._temperature for s in self.scores(text)]
        return dict(zip(self.labels, softmax(scaled), strict=True))

    def predict(self, text: str) -> tuple[str, float]:
        proba = self.predict_proba(text)
        label = max(self.labels, key=proba.__getitem__)
        return label, proba[label]
