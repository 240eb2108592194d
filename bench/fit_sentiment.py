"""Fit the English blend (services/sentiment/analysis/en_blend_params.py) on the fitting half of the
human-rated sets, and hold out the other half for bench/sentiment_bench.py.

    .venv/bin/python bench/fit_sentiment.py            # refit and rewrite en_blend_params.py
    .venv/bin/python bench/fit_sentiment.py --dry-run  # print the fit and held-out figures only

The split is fixed: an item is in the fitting half when crc32("<set>:<id>") % 100 < 50. Both files
weigh the same in the regression and in the threshold search (the movie file is 2.5x the tweets and
would otherwise decide thresholds that carry over poorly).
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from services.sentiment.analysis.english import (  # noqa: E402
    FEATURE_NAMES,
    _pattern_sentiment,
    _vader,
    blend_features,
)

RATED_SETS = {"tweets": "tweets_GroundTruth.txt", "movie": "movieReviewSnippets_GroundTruth.txt"}
PARAMS_PATH = REPO_ROOT / "services" / "sentiment" / "analysis" / "en_blend_params.py"
FIT_SHARE_PERCENT = 50
RIDGE_LAMBDA = 1.0
THRESHOLD_GRID = np.round(np.arange(-0.60, 0.601, 0.01), 2)


@dataclass(frozen=True)
class RatedText:
    id: str
    rating: float  # mean human rating, -4..+4
    text: str


def data_dir() -> Path:
    """$CLOSELOOP_SENTIMENT_DATA, or shared/data/sentiment in the nearest folder above the repository
    that has one (beside a clone, or two levels up from a worktree under wt/)."""
    override = os.environ.get("CLOSELOOP_SENTIMENT_DATA")
    if override:
        return Path(override)
    for folder in REPO_ROOT.parents:
        candidate = folder / "shared" / "data" / "sentiment"
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "data" / "sentiment"


def load_rated(path: Path) -> list[RatedText]:
    """Read `id<TAB>mean rating<TAB>text` lines (CRLF or LF)."""
    items = []
    with path.open(encoding="utf-8", newline="") as lines:
        for line in lines:
            line = line.rstrip("\r\n")
            if line.strip():
                item_id, rating, text = line.split("\t", 2)
                items.append(RatedText(item_id, float(rating), text))
    return items


def in_fitting_half(set_name: str, item_id: str) -> bool:
    return zlib.crc32(f"{set_name}:{item_id}".encode()) % 100 < FIT_SHARE_PERCENT


def encoder_fold(source: str, item_id: str) -> int:
    """0 or 1: which of two encoders fine-tuned without it embeds a fitting text for the head's fit
    (bench/finetune_encoder.py --fold, bench/fit_model_head.py --fold-layers)."""
    return zlib.crc32(f"fold:{source}:{item_id}".encode()) % 2


def split(set_name: str, items: Iterable[RatedText]) -> tuple[list[RatedText], list[RatedText]]:
    fitting, held_out = [], []
    for item in items:
        (fitting if in_fitting_half(set_name, item.id) else held_out).append(item)
    return fitting, held_out


def gold_classes(ratings: Sequence[float], cut: float = 0.5) -> np.ndarray:
    """0 negative, 1 neutral, 2 positive: the README's rule (> 0.5 positive, < -0.5 negative)."""
    values = np.asarray(ratings, dtype=float)
    return np.where(values > cut, 2, np.where(values < -cut, 0, 1))


def predicted_classes(polarities: Sequence[float], thresholds: tuple[float, float]) -> np.ndarray:
    values = np.asarray(polarities, dtype=float)
    return np.where(values > thresholds[1], 2, np.where(values < thresholds[0], 0, 1))


def class_f1(gold: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 of each class (negative, neutral, positive), 0 for a class neither side has."""
    confusion = np.bincount(gold * 3 + predicted, minlength=9).reshape(3, 3)
    true_positive = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return np.divide(2 * true_positive, denominator, out=np.zeros(3), where=denominator > 0)


def macro_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    return float(class_f1(gold, predicted).mean())


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    return float(np.corrcoef(np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0, 1])


def feature_matrix(items: Sequence[RatedText], customer_service: bool) -> np.ndarray:
    vader, sentiment = _vader(customer_service), _pattern_sentiment()
    rows = []
    for item in items:
        polarity, subjectivity = sentiment(item.text)[:2]
        rows.append(blend_features(vader.polarity_scores(item.text), polarity, subjectivity, item.text))
    return np.array(rows)


def fit_ridge(blocks: Sequence[tuple[np.ndarray, np.ndarray]], lam: float = RIDGE_LAMBDA) -> np.ndarray:
    """Weighted ridge on rating/4, each block (file) weighing the same; the bias is not penalised."""
    xs, ys, ws = [], [], []
    for x, y in blocks:
        xs.append(x)
        ys.append(y / 4.0)
        ws.append(np.full(len(y), 1.0 / len(y)))
    x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws) * sum(len(b[1]) for b in blocks)
    root = np.sqrt(w)
    xw, yw = x * root[:, None], y * root
    penalty = lam * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(xw.T @ xw + penalty, xw.T @ yw)


def fit_thresholds(blocks: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The (negative below, positive above) pair maximising the files' mean macro-F1."""
    golds = [gold_classes(ratings) for _, ratings in blocks]
    best, best_pair = -1.0, (-0.05, 0.05)
    for low in THRESHOLD_GRID:
        for high in THRESHOLD_GRID[low <= THRESHOLD_GRID]:
            pair = (float(low), float(high))
            mean = sum(
                macro_f1(gold, predicted_classes(p, pair)) for (p, _), gold in zip(blocks, golds, strict=True)
            ) / len(blocks)
            if mean > best + 1e-12:
                best, best_pair = mean, pair
    return best_pair


def write_params(weights: np.ndarray, thresholds: tuple[float, float], customer_service: bool) -> None:
    weight_lines = "\n".join(
        f"    {w:+.6f},  # {name}" for w, name in zip(weights, FEATURE_NAMES, strict=True)
    )
    PARAMS_PATH.write_text(
        '"""Fitted parameters of the English blend. Generated by bench/fit_sentiment.py; do not edit.\n\n'
        "Fitted on the half of the VADER human-rated sets with\n"
        f'crc32("<set>:<id>") % 100 < {FIT_SHARE_PERCENT}\n'
        "(tweets and movie snippets weighing the same); bench/sentiment_bench.py reports the other half.\n"
        '"""\n\n'
        f'NAME = "en-blend-v1"\n'
        f"CUSTOMER_SERVICE_LEXICON = {customer_service}\n"
        f"RIDGE_LAMBDA = {RIDGE_LAMBDA}\n"
        "FEATURES = (\n" + "".join(f'    "{name}",\n' for name in FEATURE_NAMES) + ")\n"
        f"WEIGHTS = (\n{weight_lines}\n)\n"
        "# (negative below, positive above): fitted for the files' mean macro-F1.\n"
        f"THRESHOLDS = ({thresholds[0]:+.2f}, {thresholds[1]:+.2f})\n",
        encoding="utf-8",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="print figures, do not rewrite the params")
    parser.add_argument("--plain-vader", action="store_true", help="without the customer-service lexicon")
    args = parser.parse_args(argv)
    customer_service = not args.plain_vader

    fitting_blocks, held_out_blocks = [], []
    for set_name, file_name in RATED_SETS.items():
        fitting, held_out = split(set_name, load_rated(data_dir() / file_name))
        fitting_blocks.append(
            (feature_matrix(fitting, customer_service), np.array([i.rating for i in fitting]))
        )
        held_out_blocks.append(
            (feature_matrix(held_out, customer_service), np.array([i.rating for i in held_out]))
        )
    weights = fit_ridge(fitting_blocks)
    thresholds = fit_thresholds([(x @ weights, y) for x, y in fitting_blocks])
    print(f"customer-service lexicon: {customer_service}; thresholds {thresholds}")
    for set_name, (x, y) in zip(RATED_SETS, held_out_blocks, strict=True):
        polarity = np.clip(x @ weights, -1, 1)
        f1 = macro_f1(gold_classes(y), predicted_classes(polarity, thresholds))
        print(f"held-out {set_name:7s} n={len(y):5d}  r={pearson(polarity, y):.3f}  macro-F1={f1:.3f}")
    if not args.dry_run:
        write_params(weights, thresholds, customer_service)
        print(f"wrote {PARAMS_PATH.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
