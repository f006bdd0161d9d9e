"""TensorFlow Lite graphs run as JAX functions: the small convolutional networks MediaPipe ships
(the face mesh's landmark network, the BlazeFace detector) read from their ``.tflite`` files.

:func:`read` parses a ``.tflite`` flatbuffer (with the ``tflite`` package's schema accessors)
into a :class:`Graph` (the operators in the file's order, which TFLite keeps topological) and a
dict of constant arrays; float16 weights behind ``DEQUANTIZE`` operators are converted to
float32 once, at reading. :func:`run` evaluates the graph with ``jax.lax`` (NHWC activations,
the file's own weight layouts) and is jitted at module level with the graph static, so one
compilation serves every batch of one shape.

Operators: ``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``MAX_POOL_2D`` (TFLite's SAME / VALID padding,
strides, dilations, fused ReLU / ReLU6 / tanh), ``ADD``, ``PRELU``, ``RELU``, ``PAD``,
``RESHAPE``, ``CONCATENATION``. Any other operator is refused at reading with the file's name.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD", "PRELU", "RELU", "PAD",
             "RESHAPE", "CONCATENATION")
_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6", 4: "tanh"}


class GraphError(ValueError):
    """A .tflite file that cannot be read or uses an operator this module does not run."""


@dataclasses.dataclass(frozen=True)
class Op:
    kind: str                         # TFLite builtin operator name, e.g. "CONV_2D"
    inputs: Tuple[int, ...]           # tensor indices (-1: absent optional input)
    output: int
    options: Tuple[Tuple[str, object], ...] = ()

    def option(self, name, default=None):
        return dict(self.options).get(name, default)


@dataclasses.dataclass(frozen=True)
class Graph:
    """A graph's structure (hashable: the static argument of :func:`run`)."""
    ops: Tuple[Op, ...]
    input: int
    outputs: Tuple[int, ...]
    output_names: Tuple[str, ...]
    input_shape: Tuple[int, ...]


def _builtin_names():
    import tflite  # noqa: PLC0415
    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _options(op, kind: str) -> Tuple[Tuple[str, object], ...]:
    import tflite  # noqa: PLC0415
    table = op.BuiltinOptions()
    if table is None:
        return ()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        o.Init(table.Bytes, table.Pos)
        return (("padding", int(o.Padding())), ("stride", (int(o.StrideH()), int(o.StrideW()))),
                ("dilation", (int(o.DilationHFactor()), int(o.DilationWFactor()))),
                ("activation", int(o.FusedActivationFunction())))
    if kind == "MAX_POOL_2D":
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return (("padding", int(o.Padding())), ("stride", (int(o.StrideH()), int(o.StrideW()))),
                ("window", (int(o.FilterHeight()), int(o.FilterWidth()))),
                ("activation", int(o.FusedActivationFunction())))
    if kind == "ADD":
        o = tflite.AddOptions()
        o.Init(table.Bytes, table.Pos)
        return (("activation", int(o.FusedActivationFunction())),)
    if kind == "CONCATENATION":
        o = tflite.ConcatenationOptions()
        o.Init(table.Bytes, table.Pos)
        return (("axis", int(o.Axis())), ("activation", int(o.FusedActivationFunction())))
    return ()


def read(path) -> Tuple[Graph, Dict[str, np.ndarray]]:
    """(graph, constants) of the .tflite file at `path`; constants are keyed by the tensor
    index as a string (a pytree with stable keys)."""
    path = pathlib.Path(path)
    try:
        import tflite  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise GraphError("reading .tflite files needs the `tflite` package "
                         "(`pip install tflite`)") from e
    try:
        buf = path.read_bytes()
        model = tflite.Model.GetRootAsModel(buf, 0)
        graph = model.Subgraphs(0)
    except Exception as e:  # noqa: BLE001 - a corrupt flatbuffer raises anything
        raise GraphError(f"{path}: not a readable TensorFlow Lite model ({e})") from e
    names = _builtin_names()
    dtypes = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64, 9: np.int8, 3: np.uint8}

    def tensor_data(i):
        t = graph.Tensors(i)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or t.Type() not in dtypes:
            return None
        return np.frombuffer(data.tobytes(), dtypes[t.Type()]).reshape(t.ShapeAsNumpy())

    constants: Dict[str, np.ndarray] = {}
    ops = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        inputs = tuple(int(i) for i in op.InputsAsNumpy())
        output = int(op.OutputsAsNumpy()[0])
        if kind == "DEQUANTIZE":
            data = tensor_data(inputs[0])
            if data is None:
                raise GraphError(f"{path}: DEQUANTIZE of a tensor without data")
            constants[str(output)] = data.astype(np.float32)
            continue
        if kind not in SUPPORTED:
            raise GraphError(f"{path}: operator {kind} is not supported (supported: "
                             f"{', '.join(SUPPORTED)})")
        options = _options(op, kind)
        # the paddings and the new shape set shapes: kept in the (static) graph
        if kind == "PAD":
            data = tensor_data(inputs[1]) if len(inputs) > 1 and inputs[1] >= 0 else None
            if data is None:
                raise GraphError(f"{path}: PAD without constant paddings")
            options += (("paddings", tuple(tuple(int(v) for v in row) for row in data)),)
            inputs = inputs[:1]
        elif kind == "RESHAPE":
            shape = tuple(int(v) for v in graph.Tensors(output).ShapeAsNumpy())
            options += (("shape", shape),)
            inputs = inputs[:1]
        for i in inputs[1:]:
            if i >= 0 and str(i) not in constants:
                data = tensor_data(i)
                if data is not None and data.size:
                    constants[str(i)] = data.astype(np.float32)
        ops.append(Op(kind, inputs, output, options))
    inp = int(graph.InputsAsNumpy()[0])
    outs = tuple(int(i) for i in graph.OutputsAsNumpy())
    return Graph(tuple(ops), inp, outs,
                 tuple(graph.Tensors(i).Name().decode() for i in outs),
                 tuple(int(s) for s in graph.Tensors(inp).ShapeAsNumpy())), constants


@functools.lru_cache(maxsize=None)
def load(path: str, input_shape: Tuple[int, ...], n_outputs: int, what: str):
    """(graph, constants as device arrays) of the file at `path`, read once per process; a
    GraphError naming the file when its input is not (batch,) + `input_shape` or it has fewer
    than `n_outputs` outputs (it is not `what`)."""
    graph, constants = read(path)
    if graph.input_shape[1:] != tuple(input_shape) or len(graph.outputs) < n_outputs:
        raise GraphError(f"{path}: not {what} (input {graph.input_shape}, "
                         f"{len(graph.outputs)} outputs)")
    return graph, {k: jnp.asarray(v) for k, v in constants.items()}


def _activation(x, code: int):
    kind = _ACTIVATIONS.get(code, "unknown")
    if kind is None:
        return x
    if kind == "relu":
        return jax.nn.relu(x)
    if kind == "relu6":
        return jnp.clip(x, 0.0, 6.0)
    if kind == "tanh":
        return jnp.tanh(x)
    raise GraphError(f"fused activation {code} is not supported")


def _padding(code: int) -> str:
    return "SAME" if code == 0 else "VALID"


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1):
    """TFLite's (TensorFlow's) SAME padding of one axis: (before, after, output size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2, out


def _depthwise(x, w, stride, dilation, padding_code: int):
    """DEPTHWISE_CONV_2D with a depth multiplier of 1, as a sum of the kernel's shifted,
    per-channel scaled copies of the input. (XLA on the CPU, jax 0.10, miscompiles the grouped
    convolution `conv_general_dilated(feature_group_count=C)` inside the BlazeFace graph:
    outputs off by ~10% of their scale under jit, right op by op; found against TFLite's own
    interpreter.)"""
    kh, kw = w.shape[1:3]
    if w.shape[3] != x.shape[3]:
        raise GraphError("DEPTHWISE_CONV_2D with a depth multiplier other than 1")
    (sh, sw), (dh, dw) = stride, dilation
    n, h, wd, c = x.shape
    if padding_code == 0:
        top, bottom, oh = _same_padding(h, kh, sh, dh)
        left, right, ow = _same_padding(wd, kw, sw, dw)
        x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    else:
        oh = (h - (kh - 1) * dh - 1) // sh + 1
        ow = (wd - (kw - 1) * dw - 1) // sw + 1
    y = 0.0
    for i in range(kh):
        for j in range(kw):
            y = y + x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                      j * dw:j * dw + (ow - 1) * sw + 1:sw] * w[0, i, j]
    return y


def _apply(op: Op, args):
    x = args[0]
    if op.kind == "CONV_2D":
        w, b = args[1], args[2]
        y = jax.lax.conv_general_dilated(
            x, w, op.option("stride"), _padding(op.option("padding")),
            rhs_dilation=op.option("dilation"), dimension_numbers=("NHWC", "OHWI", "NHWC"))
        return _activation(y + (0.0 if b is None else b), op.option("activation"))
    if op.kind == "DEPTHWISE_CONV_2D":
        w, b = args[1], args[2]                      # (1, kh, kw, C)
        y = _depthwise(x, w, op.option("stride"), op.option("dilation"), op.option("padding"))
        return _activation(y + (0.0 if b is None else b), op.option("activation"))
    if op.kind == "MAX_POOL_2D":
        wh, ww = op.option("window")
        sh, sw = op.option("stride")
        y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, wh, ww, 1), (1, sh, sw, 1),
                                  _padding(op.option("padding")))
        return _activation(y, op.option("activation"))
    if op.kind == "ADD":
        return _activation(x + args[1], op.option("activation"))
    if op.kind == "PRELU":
        return jnp.where(x >= 0, x, args[1] * x)
    if op.kind == "RELU":
        return jax.nn.relu(x)
    if op.kind == "PAD":
        return jnp.pad(x, op.option("paddings"))
    if op.kind == "RESHAPE":
        return jnp.reshape(x, (x.shape[0],) + op.option("shape")[1:])
    if op.kind == "CONCATENATION":
        return _activation(jnp.concatenate(args, axis=op.option("axis")),
                           op.option("activation"))
    raise GraphError(f"operator {op.kind} is not supported")  # pragma: no cover


@functools.partial(jax.jit, static_argnums=0)
def run(graph: Graph, constants: Dict[str, jax.Array], x: jax.Array) -> Tuple[jax.Array, ...]:
    """The graph's outputs for the batch `x` (N, H, W, C) (the file's batch of 1 is read as
    any batch size)."""
    values = {graph.input: jnp.asarray(x, jnp.float32)}

    def value(i):
        if i < 0:
            return None
        return values[i] if i in values else constants[str(i)]

    for op in graph.ops:
        values[op.output] = _apply(op, [value(i) for i in op.inputs])
    return tuple(values[i] for i in graph.outputs)

