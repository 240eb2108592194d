"""Fit the model tier's head (services/sentiment/analysis/data/model_head.npz).

    .venv/bin/pip install -e '.[bench]'   # numpy and the model tier (the `model` extra)
    .venv/bin/python bench/fit_model_head.py            # refit and save the head
    .venv/bin/python bench/fit_model_head.py --dry-run  # print the fit only
    .venv/bin/python bench/fit_model_head.py --compare  # 2-fold CV of candidate heads, fitting halves only

English only (the model is): the fitting half of bench/data/nps_comments.csv and the fitting halves of
the human-rated sets, each of the three sources weighing the same. The head is a network with one hidden
layer of 64 ReLU units over model_tier.head_features (embedding, light polarity, bias), a 3-class softmax,
fitted with Adam in numpy (fixed seed); then the label thresholds on P(positive) - P(negative) that
maximise the sources' mean macro-F1. --compare chose it over a logistic regression (and wider networks)
by cross-validation inside the fitting halves: the reporting halves are never looked at here.
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

NAME = "minilm-l6-int8-mlp-v2"
HIDDEN_UNITS = 64
L2 = 1e-3
EPOCHS = 40
LEARNING_RATE = 1e-3
MINIBATCH = 256
SEED = 0
Block = tuple[np.ndarray, np.ndarray]  # (features, classes 0/1/2) of one source


def source_features(texts: Sequence[str]) -> np.ndarray:
    light = [analyze(text, language="en", key_phrases=False).polarity or 0.0 for text in texts]
    return head_features(encoder().encode(texts), light)


def _source_weights(blocks: Sequence[Block]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.vstack([features for features, _ in blocks])
    y = np.concatenate([classes for _, classes in blocks])
    weight = np.concatenate([np.full(len(classes), 1.0 / len(classes)) for _, classes in blocks])
    return x, y, weight * len(weight) / weight.sum()  # each source the same share, mean weight 1


def fit_network(blocks: Sequence[Block], hidden: int = HIDDEN_UNITS, l2: float = L2) -> ModelHead:
    """One hidden ReLU layer (none when hidden=0: a logistic regression), weighted cross-entropy."""
    x, y, weight = _source_weights(blocks)
    rng = np.random.default_rng(SEED)
    sizes = [x.shape[1], hidden, 3] if hidden else [x.shape[1], 3]
    params = []
    for inputs, outputs in zip(sizes, sizes[1:], strict=False):
        params += [rng.standard_normal((inputs, outputs)) * np.sqrt(2.0 / inputs), np.zeros(outputs)]
    moment = [np.zeros_like(p) for p in params]
    square = [np.zeros_like(p) for p in params]
    onehot, step = np.eye(3)[y], 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for begin in range(0, len(x), MINIBATCH):
            rows = order[begin : begin + MINIBATCH]
            layers = tuple(zip(params[::2], params[1::2], strict=True))
            grads = _gradients(layers, x[rows], onehot[rows], weight[rows] / len(rows), l2)
            step += 1
            for i, grad in enumerate(grads):  # Adam
                moment[i] = 0.9 * moment[i] + 0.1 * grad
                square[i] = 0.999 * square[i] + 0.001 * grad * grad
                params[i] -= (
                    LEARNING_RATE * (moment[i] / (1 - 0.9**step))
                    / (np.sqrt(square[i] / (1 - 0.999**step)) + 1e-8)
                )
    return ModelHead(NAME, tuple(zip(params[::2], params[1::2], strict=True)), (0.0, 0.0))


def _gradients(
    layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray, onehot: np.ndarray,
    weight: np.ndarray, l2: float,
) -> list[np.ndarray]:
    inputs = [x]
    for weights, bias in layers[:-1]:
        inputs.append(np.maximum(inputs[-1] @ weights + bias, 0.0))
    logits = inputs[-1] @ layers[-1][0] + layers[-1][1]
    logits -= logits.max(axis=1, keepdims=True)
    odds = np.exp(logits)
    odds /= odds.sum(axis=1, keepdims=True)
    delta = (odds - onehot) * weight[:, None]
    grads: list[np.ndarray] = []
    for index in range(len(layers) - 1, -1, -1):
        weights, _ = layers[index]
        grads[:0] = [inputs[index].T @ delta + l2 * weights, delta.sum(axis=0)]
        if index:
            delta = (delta @ weights.T) * (inputs[index] > 0)
    return grads


def fit_thresholds(head: ModelHead, blocks: Sequence[Block]) -> tuple[float, float]:
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


def fitted(blocks: Sequence[Block], hidden: int = HIDDEN_UNITS, l2: float = L2) -> ModelHead:
    head = fit_network(blocks, hidden, l2)
    return ModelHead(head.name, head.layers, fit_thresholds(head, blocks))


def compare(blocks: Sequence[Block], names: Sequence[str]) -> None:
    """2-fold cross-validation inside the fitting halves: macro-F1 per source of candidate heads."""
    rng = np.random.default_rng(SEED)
    folds = [rng.permutation(len(classes)) % 2 for _, classes in blocks]
    candidates = {
        "logistic": (0, L2), "mlp 64": (64, L2), "mlp 128": (128, L2), "mlp 128, l2 1e-4": (128, 1e-4)
    }
    print("2-fold CV inside the fitting halves, macro-F1:", ", ".join(names), "and their mean")
    for label, (hidden, l2) in candidates.items():
        scores = np.zeros(len(blocks))
        for fold in (0, 1):
            train = [(f[k != fold], c[k != fold]) for (f, c), k in zip(blocks, folds, strict=True)]
            head = fitted(train, hidden, l2)
            for i, ((features, classes), k) in enumerate(zip(blocks, folds, strict=True)):
                polarities = head.polarities(features[k == fold])
                scores[i] += macro_f1(classes[k == fold], predicted_classes(polarities, head.thresholds)) / 2
        print(f"  {label:18s}" + "".join(f" {value:.3f}" for value in scores) + f"  mean {scores.mean():.3f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="print the fit, do not save the head")
    parser.add_argument("--compare", action="store_true", help="cross-validate candidate heads first")
    args = parser.parse_args(argv)

    fitting, _ = halves(load_comments())
    english = [c for c in fitting if c.language == "en"]
    blocks = [
        (source_features([c.text for c in english]), np.array([LABELS.index(c.label) for c in english]))
    ]
    for set_name, file_name in RATED_SETS.items():
        items = split(set_name, load_rated(data_dir() / file_name))[0]
        blocks.append((source_features([i.text for i in items]), gold_classes([i.rating for i in items])))
    names = ["nps", *RATED_SETS]
    if args.compare:
        compare(blocks, names)
    head = fitted(blocks)
    for name, (features, classes) in zip(names, blocks, strict=True):
        f1 = macro_f1(classes, predicted_classes(head.polarities(features), head.thresholds))
        print(f"fitting {name:7s} n={len(classes):5d} macro-F1={f1:.3f}")
    print(f"thresholds {head.thresholds}")
    if not args.dry_run:
        head.save()
        print(f"wrote {HEAD_PATH}")


if __name__ == "__main__":
    main()
