"""Fit the model tier's head (services/sentiment/analysis/data/model_head.npz).

    .venv/bin/pip install -e '.[bench]'   # numpy and the model tier (the `model` extra)
    .venv/bin/python bench/fit_model_head.py            # refit and save the head
    .venv/bin/python bench/fit_model_head.py --dry-run  # print the fit only

English only (the model is): the fitting half of bench/data/nps_comments.csv and the fitting halves of
the human-rated sets, each of the three sources weighing the same. A 3-class logistic regression over
model_tier.head_features (embedding, light polarity, bias), fitted by gradient descent in numpy; then the
label thresholds on P(positive) - P(negative) that maximise the sources' mean macro-F1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_sentiment import (  # noqa: E402
    RATED_SETS,
    THRESHOLD_GRID,
    data_dir,
    gold_classes,
    load_rated,
    macro_f1,
    predicted_classes,
    split,
)
from nps_comments import LABELS, halves, load_comments  # noqa: E402

from services.sentiment.analysis import analyze  # noqa: E402
from services.sentiment.analysis.minilm import encoder  # noqa: E402
from services.sentiment.analysis.model_tier import HEAD_PATH, ModelHead, head_features  # noqa: E402

NAME = "minilm-l6-head-v1"
L2 = 1e-3
STEPS = 800


def source_features(texts: Sequence[str]) -> np.ndarray:
    light = [analyze(text, language="en", key_phrases=False).polarity or 0.0 for text in texts]
    return head_features(encoder().encode(texts), light)


def fit_weights(blocks: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    x = np.vstack([features for features, _ in blocks])
    y = np.concatenate([classes for _, classes in blocks])
    sample_weight = np.concatenate([np.full(len(classes), 1.0 / len(classes)) for _, classes in blocks])
    sample_weight /= sample_weight.sum()
    onehot = np.eye(3)[y]
    weights = np.zeros((x.shape[1], 3))
    velocity = np.zeros_like(weights)
    for _ in range(STEPS):
        logits = x @ weights
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        odds /= odds.sum(axis=1, keepdims=True)
        gradient = x.T @ ((odds - onehot) * sample_weight[:, None]) + L2 * weights
        velocity = 0.9 * velocity - 2.0 * gradient
        weights += velocity
    return weights


def fit_thresholds(head: ModelHead, blocks: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    polarities = [head.polarities(features) for features, _ in blocks]
    best, best_pair = -1.0, (-0.05, 0.05)
    for low in THRESHOLD_GRID:
        for high in THRESHOLD_GRID[low <= THRESHOLD_GRID]:
            pair = (float(low), float(high))
            mean = sum(
                macro_f1(classes, predicted_classes(p, pair))
                for p, (_, classes) in zip(polarities, blocks, strict=True)
            ) / len(blocks)
            if mean > best + 1e-12:
                best, best_pair = mean, pair
    return best_pair


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="print the fit, do not save the head")
    args = parser.parse_args(argv)

    fitting, _ = halves(load_comments())
    english = [c for c in fitting if c.language == "en"]
    blocks = [
        (source_features([c.text for c in english]), np.array([LABELS.index(c.label) for c in english]))
    ]
    for set_name, file_name in RATED_SETS.items():
        items = split(set_name, load_rated(data_dir() / file_name))[0]
        blocks.append((source_features([i.text for i in items]), gold_classes([i.rating for i in items])))
    weights = fit_weights(blocks)
    head = ModelHead(NAME, weights, (0.0, 0.0))
    head = ModelHead(NAME, weights, fit_thresholds(head, blocks))
    for name, (features, classes) in zip(["nps", *RATED_SETS], blocks, strict=True):
        f1 = macro_f1(classes, predicted_classes(head.polarities(features), head.thresholds))
        print(f"fitting {name:7s} n={len(classes):5d} macro-F1={f1:.3f}")
    print(f"thresholds {head.thresholds}")
    if not args.dry_run:
        head.save()
        print(f"wrote {HEAD_PATH}")


if __name__ == "__main__":
    main()
