"""The development set of NPS comments (bench/data/nps_comments.csv) and its fixed split.

Each row: id, language (en/tr), label (positive/neutral/negative, the feeling a success-team member
reads), kind (plain, unmet_expectation, sarcasm, double_negation, mixed_verdict, suggestion, short,
no_turkish_letters), domain, topics (";"-separated) and text. Written for this project by the same hand
as the rules, so it flatters them: comments from real customers are harder.

A row is in the fitting half when crc32("nps:<id>") % 100 < 50; rules and cues are written and fitted
on that half only, and bench/sentiment_bench.py reports the other half.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

NPS_SET = Path(__file__).resolve().parent / "data" / "nps_comments.csv"
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Comment:
    id: str
    language: str
    label: str
    kind: str
    domain: str
    topics: frozenset[str]
    text: str


def in_fitting_half(comment_id: str) -> bool:
    return zlib.crc32(f"nps:{comment_id}".encode()) % 100 < 50


def load_comments(path: Path = NPS_SET) -> list[Comment]:
    with path.open(encoding="utf-8", newline="") as rows:
        return [
            Comment(
                row["id"],
                row["language"],
                row["label"],
                row["kind"],
                row["domain"],
                frozenset(topic for topic in row["topics"].split(";") if topic),
                row["text"],
            )
            for row in csv.DictReader(rows)
        ]


def halves(comments: list[Comment]) -> tuple[list[Comment], list[Comment]]:
    """(fitting half, reporting half)."""
    fitting = [c for c in comments if in_fitting_half(c.id)]
    return fitting, [c for c in comments if not in_fitting_half(c.id)]


def accuracy_and_macro_f1(gold: list[str], predicted: list[str]) -> tuple[float, float]:
    """3-class accuracy and macro-F1; an unscored prediction counts as wrong."""
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    f1s = []
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        predicted_n, gold_n = predicted.count(label), gold.count(label)
        f1s.append(2 * tp / (predicted_n + gold_n) if predicted_n + gold_n else 0.0)
    return correct / len(gold), sum(f1s) / len(f1s)
