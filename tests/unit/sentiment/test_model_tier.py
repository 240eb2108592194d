"""The model tier's machinery (safetensors, WordPiece, the MiniLM forward pass, the head, batching) on a
tiny model the test makes: the real model is an optional install, and its accuracy is the benchmark's."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import services.sentiment.analysis as analysis
from services.sentiment.analysis import LIGHT, MODEL, analyze, analyze_batch
from services.sentiment.analysis.minilm import MiniLMEncoder, WordPieceTokenizer, read_safetensors
from services.sentiment.analysis.model_tier import ModelHead, ModelReader, head_features
from services.sentiment.runtime import analyzer_tier
from shared.settings import Settings
from tests.conftest import make_settings

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "courier", "never", "came", "great", "service", "un",
         "##aff", "##able", ",", "!", "cafe"]
HIDDEN, HEADS, INTERMEDIATE = 8, 2, 16


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        span = [offset, offset + len(data)]
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": span}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)

    def weights(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    tensors = {
        "embeddings.word_embeddings.weight": weights(len(VOCAB), HIDDEN),
        "embeddings.position_embeddings.weight": weights(32, HIDDEN),
        "embeddings.token_type_embeddings.weight": weights(2, HIDDEN),
        "embeddings.LayerNorm.weight": np.ones(HIDDEN),
        "embeddings.LayerNorm.bias": np.zeros(HIDDEN),
    }
    prefix = "encoder.layer.0."
    for part in ("query", "key", "value"):
        tensors[f"{prefix}attention.self.{part}.weight"] = weights(HIDDEN, HIDDEN)
        tensors[f"{prefix}attention.self.{part}.bias"] = weights(HIDDEN)
    tensors |= {
        f"{prefix}attention.output.dense.weight": weights(HIDDEN, HIDDEN),
        f"{prefix}attention.output.dense.bias": weights(HIDDEN),
        f"{prefix}attention.output.LayerNorm.weight": np.ones(HIDDEN),
        f"{prefix}attention.output.LayerNorm.bias": np.zeros(HIDDEN),
        f"{prefix}intermediate.dense.weight": weights(INTERMEDIATE, HIDDEN),
        f"{prefix}intermediate.dense.bias": weights(INTERMEDIATE),
        f"{prefix}output.dense.weight": weights(HIDDEN, INTERMEDIATE),
        f"{prefix}output.dense.bias": weights(HIDDEN),
        f"{prefix}output.LayerNorm.weight": np.ones(HIDDEN),
        f"{prefix}output.LayerNorm.bias": np.zeros(HIDDEN),
    }
    write_safetensors(tmp_path / "model.safetensors", tensors)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    config = {"hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_hidden_layers": 1}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


@pytest.fixture
def reader(model_dir: Path) -> ModelReader:
    # A head that reads only the light polarity (the feature before the bias): the model's verdict then
    # follows the light tier's, so the test can tell its wiring works.
    weights = np.zeros((HIDDEN + 2, 3))
    weights[HIDDEN, 0], weights[HIDDEN, 2] = -4.0, 4.0
    head = ModelHead("tiny-head", weights, (-0.2, 0.2))
    return ModelReader(analysis._english(), MiniLMEncoder(model_dir), head)


def test_safetensors_are_read_back_as_written(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_safetensors(tmp_path / "t.safetensors", {"a": array})
    assert np.array_equal(read_safetensors(tmp_path / "t.safetensors")["a"], array)


def test_wordpiece_splits_like_bert(model_dir: Path) -> None:
    tokenizer = WordPieceTokenizer(model_dir / "vocab.txt")
    ids = tokenizer.ids("The courier, unaffable! Café xyz")
    assert [VOCAB[i] for i in ids] == [
        "[CLS]", "the", "courier", ",", "un", "##aff", "##able", "!", "cafe", "[UNK]", "[SEP]"
    ]


def test_embeddings_are_unit_vectors_whatever_the_batch(model_dir: Path) -> None:
    encoder = MiniLMEncoder(model_dir)
    texts = ["the courier never came", "great service", "great"]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert together.shape == (3, HIDDEN)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-5)  # padding in a batch changes nothing


def test_head_saved_and_loaded_scores_the_same(tmp_path: Path, reader: ModelReader) -> None:
    head = ModelHead("h", np.random.default_rng(1).standard_normal((HIDDEN + 2, 3)), (-0.1, 0.3))
    head.save(tmp_path / "head.npz")
    loaded = ModelHead.load(tmp_path / "head.npz")
    features = head_features(np.ones((2, HIDDEN)) / np.sqrt(HIDDEN), [0.5, -0.5])
    assert loaded.name == "h" and loaded.thresholds == (-0.1, 0.3)
    assert np.allclose(loaded.polarities(features), head.polarities(features), atol=1e-5)


def test_model_tier_scores_english_through_the_head(monkeypatch, reader: ModelReader) -> None:
    monkeypatch.setattr(analysis, "_english_model", lambda: reader)
    negative = analyze("Two weeks and the replacement never came", language="en", tier=MODEL)
    positive = analyze("Great service, thank you!", language="en", tier=MODEL)
    assert (negative.label, positive.label) == ("negative", "positive")
    assert negative.analyzer == "tiny-head+en-blend-v1+nps-v1"
    assert analyze("Great service", language="en", tier=LIGHT).analyzer == "en-blend-v1+nps-v1"


def test_model_tier_keeps_the_light_reading_of_scores_and_turkish(monkeypatch, reader: ModelReader) -> None:
    monkeypatch.setattr(analysis, "_english_model", lambda: reader)
    assert analyze("9/10", language="en", tier=MODEL).polarity == analyze("9/10", language="en").polarity
    turkish = analyze("Kargo gelmedi", language="tr", tier=MODEL)
    assert (turkish.analyzer, turkish.label) == ("tr-lexicon-v1+nps-v1", "negative")


def test_model_tier_batch_matches_one_by_one(monkeypatch, reader: ModelReader) -> None:
    monkeypatch.setattr(analysis, "_english_model", lambda: reader)
    texts = ["The courier never came", "Great service", "Kargo gelmedi", "Great service", "👍"]
    batch = analyze_batch(texts, language="en", tier=MODEL)
    one_by_one = [analyze(text, language="en", tier=MODEL) for text in texts]
    assert [(a.label, a.language) for a in batch] == [(a.label, a.language) for a in one_by_one]
    assert all(abs(a.polarity - b.polarity) < 1e-6 for a, b in zip(batch, one_by_one, strict=True))


def test_light_tier_needs_no_model() -> None:
    assert analyzer_tier(make_settings("sqlite://")) == LIGHT


def test_analyzer_setting_names_a_tier() -> None:
    assert Settings.from_env({}).sentiment_analyzer == LIGHT
    assert Settings.from_env({"SENTIMENT_ANALYZER": "Model"}).sentiment_analyzer == MODEL
    with pytest.raises(ValueError, match="SENTIMENT_ANALYZER"):
        Settings.from_env({"SENTIMENT_ANALYZER": "huge"})
