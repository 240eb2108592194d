"""The model tier (`SENTIMENT_ANALYZER=model`): English comments read by a head fitted on sentence
embeddings of all-MiniLM-L6-v2 (`minilm.py`) and the light tier's polarity.

The head is a 3-class logistic regression over [embedding, 3 x light polarity, 1], fitted by
bench/fit_model_head.py on the fitting half of bench/data/nps_comments.csv and the fitting halves of the
human-rated sets (each source weighing the same) and saved in data/model_head.npz. Polarity is
P(positive) - P(negative); its label thresholds were fitted with it. Answers that are only a score or an
emoji ("9/10", "👍") and Turkish comments keep the light tier's reading: the model is English-only and has
no sense of "9/10". Needs the `model` extra (`pip install -e '.[model]'`, see README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from services.sentiment.analysis.comments import CommentReader, short_answer_polarity
from services.sentiment.analysis.scoring import label_for

HEAD_PATH = Path(__file__).resolve().parent / "data" / "model_head.npz"
LIGHT_POLARITY_SCALE = 3.0  # the light polarity's weight against 384 unit-vector components


class Encoder(Protocol):
    """Texts in, one unit-length embedding per row out (minilm.MiniLMEncoder)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def head_features(embeddings: np.ndarray, light_polarities: Sequence[float]) -> np.ndarray:
    """The head's inputs: shared with the fitting script, so what is fitted is what runs."""
    light = np.asarray(light_polarities, dtype=np.float64)[:, None] * LIGHT_POLARITY_SCALE
    return np.hstack([embeddings.astype(np.float64), light, np.ones((len(light), 1))])


@dataclass(frozen=True)
class ModelHead:
    name: str
    weights: np.ndarray  # (features, 3): negative, neutral, positive
    thresholds: tuple[float, float]

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> ModelHead:
        with np.load(path) as saved:
            low, high = (float(value) for value in saved["thresholds"])
            return cls(str(saved["name"]), saved["weights"].astype(np.float64), (low, high))

    def save(self, path: Path = HEAD_PATH) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path, name=np.array(self.name), weights=self.weights.astype(np.float32),
            thresholds=np.array(self.thresholds),
        )

    def polarities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        odds /= odds.sum(axis=1, keepdims=True)
        return odds[:, 2] - odds[:, 0]


class ModelReader:
    """English comments through the encoder and the head; batches are encoded together."""

    def __init__(self, light: CommentReader, encoder: Encoder, head: ModelHead) -> None:
        self.name = f"{head.name}+{light.name}"
        self.thresholds = head.thresholds
        self._light, self._encoder, self._head = light, encoder, head

    def score(self, text: str) -> tuple[float, float]:
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[tuple[float, float]]:
        light = [self._light.score(text) for text in texts]
        scores = list(light)
        # Scores and emoji alone are the light tier's: a fraction means nothing to the model.
        modelled = [i for i, text in enumerate(texts) if short_answer_polarity(text) is None]
        if modelled:
            embeddings = self._encoder.encode([texts[i] for i in modelled])
            features = head_features(embeddings, [light[i][0] for i in modelled])
            for i, polarity in zip(modelled, self._head.polarities(features), strict=True):
                scores[i] = (float(polarity), light[i][1])
        return scores

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)
