"""The model tier's encoder (services/sentiment/analysis/minilm.py) on one core, beside its baseline in
the same run: texts per second and per CPU-second, and the largest difference between their embeddings.

    .venv/bin/python bench/minilm_speed.py [--quick]

Baseline: the same int8 integer graph with attention as the exporter wrote it, run in batches of 16
texts sorted by token count (the encoder before issue 20's speed work). Measured: the encoder as shipped
(`_lean_attention`, batches grouped by token count, `batches`). Texts: the development set's English
NPS comments and the held-out halves of the English human-rated sets (tweets and movie snippets, longer),
interleaved as bench/sentiment_bench.py takes them, and long comments made of 3-10 of those joined
(~160 tokens: a long NPS comment is rarer, and costs more). Rounds alternate baseline and measured, in turns;
the CPU-second figures are the ones to read on a shared machine (the load average is printed).
The embeddings must be the same (the head in data/model_head.npz was fitted on them): their largest
absolute difference is printed over every rated text and NPS comment.
"""

from __future__ import annotations

import argparse
import os

# "Per core": the tokenizer would otherwise spread a batch over every core.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_sentiment import RATED_SETS, data_dir, load_rated, split  # noqa: E402  (bench/ is not a package)
from nps_comments import load_comments  # noqa: E402

from services.sentiment.analysis.minilm import MiniLMEncoder  # noqa: E402

BASELINE_BATCH = 16  # texts a batch before, cut by count only


def held_out_english(count: int) -> list[str]:
    halves = {
        name: split(name, load_rated(data_dir() / file_name))[1] for name, file_name in RATED_SETS.items()
    }
    tweets = list(dict.fromkeys(item.text for item in halves["tweets"]))
    movie = [text for text in dict.fromkeys(item.text for item in halves["movie"]) if text not in set(tweets)]
    return [text for pair in zip(tweets, movie, strict=False) for text in pair][:count]


def long_texts(texts: Sequence[str], count: int) -> list[str]:
    draw = random.Random(20)  # the same texts each run
    return [" ".join(draw.sample(texts, draw.randint(3, 10))) for _ in range(count)]


def encode_as_before(encoder: MiniLMEncoder, texts: Sequence[str]) -> np.ndarray:
    """Batches of BASELINE_BATCH texts in order of token count, whatever their padding or size."""
    return encoder.encode(texts, BASELINE_BATCH, run_overhead_tokens=sys.maxsize, batch_tokens=sys.maxsize)


def seconds(run: MiniLMEncoder, texts: Sequence[str], baseline: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one encode."""
    started, used = time.perf_counter(), time.process_time()
    if baseline:
        encode_as_before(run, texts)
    else:
        run.encode(texts)
    return time.perf_counter() - started, time.process_time() - used


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and texts")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 9

    baseline, measured = MiniLMEncoder(lean_attention=False), MiniLMEncoder()
    samples = {
        "nps English comments": [c.text for c in load_comments() if c.language == "en"],
        "held-out English texts": held_out_english(1000),
        "long texts, 3-10 joined": long_texts(held_out_english(2000), 100),
    }
    print(f"load average at start: {' '.join(f'{load:.2f}' for load in os.getloadavg())} (2 cores here)")
    print(f"one onnxruntime thread, one tokenizer thread; {rounds} rounds, baseline and measured in turns")
    header = ("texts", "baseline texts/s (per CPU-s)", "measured texts/s (per CPU-s)", "ratio CPU")
    print(f"{header[0]:32s} {header[1]:>29s} {header[2]:>29s} {header[3]:>10s}")
    for name, texts in samples.items():
        baseline.encode(texts[:50]), measured.encode(texts[:50])  # first runs allocate: outside the timing
        times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for round_ in range(rounds):
            for is_baseline in (True, False) if round_ % 2 == 0 else (False, True):
                times[is_baseline].append(seconds(baseline if is_baseline else measured, texts, is_baseline))
        best = {
            side: (len(texts) / min(wall for wall, _ in runs), len(texts) / min(cpu for _, cpu in runs))
            for side, runs in times.items()
        }
        # Each round's pair ran side by side: the median of their ratios is the least noisy figure.
        ratio = statistics.median(old[1] / new[1] for old, new in zip(times[True], times[False], strict=True))
        tokens = sum(map(len, measured.token_ids(texts))) / len(texts)
        (old_wall, old_cpu), (new_wall, new_cpu) = best[True], best[False]
        print(
            f"{f'{name} ({len(texts)}, {tokens:.0f} tokens)':32s}"
            f" {old_wall:17.0f} ({old_cpu:5.0f})/s {new_wall:17.0f} ({new_cpu:5.0f})/s {ratio:9.2f}x"
        )
    print(f"load average at end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print("(best round of each; ratio: median over rounds of baseline CPU seconds / measured CPU seconds)")

    texts = list(
        dict.fromkeys(
            [item.text for file_name in RATED_SETS.values() for item in load_rated(data_dir() / file_name)]
            + [c.text for c in load_comments()]
        )
    )
    if args.quick:
        texts = texts[:3000]
    difference = np.abs(encode_as_before(baseline, texts) - measured.encode(texts)).max(axis=1)
    print(
        f"embeddings, {len(texts)} texts (every rated text and NPS comment): largest absolute difference"
        f" {difference.max():.3g}, texts not identical {int((difference > 0).sum())}"
    )


if __name__ == "__main__":
    main()
