"""The model tiers: English comments read by a head fitted on sentence embeddings, the light tier's
polarity and which of its cues fired. The embeddings are all-mpnet-base-v2's first seven layers'
(`mpnet.py`; `SENTIMENT_ANALYZER=model`, the default) or all-MiniLM-L6-v2's fine-tuned for sentiment
(`minilm.py`; `model-small`), each tier with its own head.

A head is a small network (one hidden layer of ReLU units: 256 for mpnet, 128 for MiniLM) over
[embedding, 3 x light polarity, cues fired (praise, complaint, suggestion, contrast), 1], a 3-class
softmax, fitted by bench/fit_model_head.py on the fitting half of bench/data/nps_comments.csv and the
fitting halves of the human-rated sets (each source weighing the same) and saved in data/mpnet_head.npz
or data/minilm_head.npz. Polarity is
(P(positive) - P(negative)) * (1 - P(neutral)) ** neutral_damping (why: ModelHead); its label thresholds
were fitted with it. Answers that are only a score or an emoji ("9/10", "👍") and Turkish comments keep
the light tier's reading: the model is English-only and has no sense of "9/10". See README's Sentiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from services.sentiment.analysis.comments import CommentReader, short_answer_polarity
from services.sentiment.analysis.scoring import label_for

# One head per encoder (bench/fit_model_head.py --encoder): each is fitted on its own encoder's embeddings.
MPNET_HEAD_PATH = Path(__file__).resolve().parent / "data" / "mpnet_head.npz"
MINILM_HEAD_PATH = Path(__file__).resolve().parent / "data" / "minilm_head.npz"
LIGHT_POLARITY_SCALE = 3.0  # the light polarity's weight against the embedding's unit-vector components
# Whether the light tier's cues fired (praise by double negation, a complaint without sentiment words:
# an unmet expectation or sarcasm's complaint, a suggestion, a contrast word before a verdict), each 0 or
# this: what the embedding of a short comment barely tells apart, and what the light rules were written for.
CUE_SCALE = 1.0
CUE_FEATURES = 4  # praise, complaint, suggestion, contrast: CommentReader.cue_counts


class Encoder(Protocol):
    """Texts in, one unit-length embedding per row out (mpnet.MpnetEncoder, minilm.MiniLMEncoder)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def head_features(
    embeddings: np.ndarray,
    light_polarities: Sequence[float],
    cue_counts: Sequence[tuple[int, int, int, int]] | None = None,
) -> np.ndarray:
    """The head's inputs, [embedding, light polarity, cues fired, 1]: shared with the fitting script, so
    what is fitted is what runs. `cue_counts` are CommentReader.cue_counts (none fired when None)."""
    light = np.asarray(light_polarities, dtype=np.float64)[:, None] * LIGHT_POLARITY_SCALE
    cues = np.zeros((len(light), CUE_FEATURES)) if cue_counts is None else np.asarray(cue_counts, float)
    fired = (cues.reshape(len(light), CUE_FEATURES) > 0) * CUE_SCALE
    return np.hstack([embeddings.astype(np.float64), light, fired, np.ones((len(light), 1))])


@dataclass(frozen=True)
class ModelHead:
    """A small network over `head_features`: dense layers with ReLU between them, then a softmax over
    (negative, neutral, positive). One layer is a logistic regression."""

    name: str
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weights (inputs, outputs), bias (outputs,))
    thresholds: tuple[float, float]
    # Polarity's factor (1 - P(neutral)) ** this: 0 is plain P(positive) - P(negative). A fifth of the
    # human-rated tweets are neutral for what they say (news, questions), a few review snippets for being
    # torn between praise and blame; one pair of thresholds on the plain difference makes the first
    # neutral only by making many of the second neutral too.
    neutral_damping: float = 0.0

    @classmethod
    def load(cls, path: Path) -> ModelHead:
        with np.load(path) as saved:
            low, high = (float(value) for value in saved["thresholds"])
            count = sum(1 for key in saved.files if key.startswith("weights_"))
            layers = tuple(
                (saved[f"weights_{i}"].astype(np.float64), saved[f"bias_{i}"].astype(np.float64))
                for i in range(count)
            )
            return cls(str(saved["name"]), layers, (low, high), float(saved["neutral_damping"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for i, (weights, bias) in enumerate(self.layers):
            arrays[f"weights_{i}"], arrays[f"bias_{i}"] = weights.astype(np.float32), bias.astype(np.float32)
        np.savez_compressed(
            path,
            name=np.array(self.name),
            thresholds=np.array(self.thresholds),
            neutral_damping=np.array(self.neutral_damping),
            **arrays,
        )

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = features
        for i, (weights, bias) in enumerate(self.layers):
            x = x @ weights + bias
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        x = x - x.max(axis=1, keepdims=True)
        odds = np.exp(x)
        return odds / odds.sum(axis=1, keepdims=True)

    def polarities(self, features: np.ndarray) -> np.ndarray:
        odds = self.probabilities(features)
        return (odds[:, 2] - odds[:, 0]) * (1.0 - odds[:, 1]) ** self.neutral_damping


class ModelReader:
    """English comments through the encoder and the head; batches are encoded together."""

    def __init__(self, light: CommentReader, encoder: Encoder, head: ModelHead) -> None:
        self.name = f"{head.name}+{light.name}"
        self.thresholds = head.thresholds
        self.encoder = encoder
        self._light, self._head = light, head

    def score(self, text: str) -> tuple[float, float]:
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[tuple[float, float]]:
        light = [self._light.score(text) for text in texts]
        scores = list(light)
        # Scores and emoji alone are the light tier's: a fraction means nothing to the model.
        modelled = [i for i, text in enumerate(texts) if short_answer_polarity(text) is None]
        if modelled:
            embeddings = self.encoder.encode([texts[i] for i in modelled])
            cues = [self._light.cue_counts(texts[i]) for i in modelled]
            features = head_features(embeddings, [light[i][0] for i in modelled], cues)
            for i, polarity in zip(modelled, self._head.polarities(features), strict=True):
                scores[i] = (float(polarity), light[i][1])
        return scores

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)
