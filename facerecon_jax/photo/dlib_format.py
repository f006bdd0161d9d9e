"""Reader of dlib's binary serialisation, enough to load dlib's DNN model files.

Written from the description of dlib's format (see docs/design.md §14); no dlib code is used.
The primitives:

* integers: a control byte (low nibble = number of magnitude bytes, 0..8; bit 0x80 = negative;
  other bits must be zero) followed by the magnitude, little-endian;
* strings: an integer length, then that many bytes;
* floats: an int64 mantissa and an int16 exponent, both as integers above; value = m * 2**e
  (exponents 32000 / 32001 / 32002 stand for +inf / -inf / nan);
* bools: the ASCII character '0' or '1';
* ``resizable_tensor`` (version 2): four integers (num_samples, k, nr, nc) then the values as raw
  little-endian float32;
* ``alias_tensor`` (version 1): four integers, no data (a view into a layer's ``params``).

A network (``add_loss_layer<LOSS, add_layer<...>>``) is written outer to inner: the loss wrapper's
version and the loss record, then every nested ``add_layer`` / ``add_tag_layer`` /
``add_skip_layer`` header (version numbers 2 and 1), then the innermost ``add_layer`` (version 3)
holding the input layer and the first computational layer, and then, from the input side outwards,
each enclosing wrapper's layer record and book-keeping (add_layer only; tag and skip layers carry
nothing beyond their header).  Tag and skip layers cannot be told apart in the file (both write
only ``version 1``), so they appear in the result as ``Layer(kind="tag_or_skip")``.

``read_dnn(path)`` parses a whole file and checks that every byte was consumed.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

_SPECIAL_EXPONENTS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class DlibFormatError(ValueError):
    """The file is not the dlib serialisation the reader expects (names file and byte offset)."""


@dataclasses.dataclass
class Layer:
    """One layer record, listed from the input side.

    kind: 'con', 'affine', 'relu', 'max_pool', 'avg_pool', 'add_prev', 'fc' or 'tag_or_skip'.
    params: the layer's numpy arrays (for example ``filters`` OIHW, ``biases``, ``gamma``,
    ``beta``, ``weights`` (n_in, n_out)); config: its integer / float settings; offset: byte offset
    of the record in the file.
    """

    kind: str
    name: str = ""
    params: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    offset: int = -1

    def num_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))


@dataclasses.dataclass
class DlibNet:
    """A parsed dlib DNN: loss record, input record and the layers from the input side."""

    path: str
    loss: dict[str, Any]
    input: dict[str, Any]
    layers: list[Layer]
    headers: list[str]          # wrapper kinds outermost first: 'add_layer' or 'tag_or_skip'
    num_bytes: int

    def num_params(self) -> int:
        return int(sum(layer.num_params() for layer in self.layers))

    def layers_of(self, kind: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind == kind]


class Reader:
    """Cursor over the bytes of a dlib-serialised file."""

    def __init__(self, data: bytes, path: str = "<bytes>"):
        self.data = memoryview(data)
        self.pos = 0
        self.path = str(path)

    # -- errors ------------------------------------------------------------------------------
    def error(self, message: str, offset: int | None = None) -> DlibFormatError:
        at = self.pos if offset is None else offset
        return DlibFormatError(f"{self.path}: byte offset {at}: {message} "
                               f"(not a dlib DNN file of the expected kind, or truncated/corrupt)")

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"unexpected end of file reading {what} "
                             f"({n} bytes wanted, {len(self.data) - self.pos} left)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    # -- primitives --------------------------------------------------------------------------
    def int(self, what: str = "integer") -> int:
        start = self.pos
        ctrl = self._take(1, what)[0]
        size = ctrl & 0x0F
        if ctrl & 0x70 or size > 8:
            raise self.error(f"bad integer control byte 0x{ctrl:02x} for {what}", start)
        value = int.from_bytes(bytes(self._take(size, what)), "little") if size else 0
        return -value if ctrl & 0x80 else value

    def expect_int(self, expected: int, what: str) -> int:
        start = self.pos
        value = self.int(what)
        if value != expected:
            raise self.error(f"expected {what} = {expected}, found {value}", start)
        return value

    def string(self, what: str = "string", max_len: int = 1 << 16) -> str:
        start = self.pos
        n = self.int(what + " length")
        if n < 0 or n > max_len:
            raise self.error(f"implausible length {n} for {what}", start)
        raw = bytes(self._take(n, what))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error(f"non-ASCII bytes in {what}: {raw[:40]!r}", start) from None

    def expect_string(self, expected: str, what: str) -> str:
        start = self.pos
        s = self.string(what)
        if s != expected:
            raise self.error(f"expected {what} {expected!r}, found {s!r}", start)
        return s

    def float(self, what: str = "float") -> float:
        start = self.pos
        mantissa = self.int(what + " mantissa")
        exponent = self.int(what + " exponent")
        if not -(1 << 63) <= mantissa < (1 << 63) or not -(1 << 15) <= exponent < (1 << 15):
            raise self.error(f"float {what} out of range", start)
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self, what: str = "bool") -> bool:
        start = self.pos
        c = self._take(1, what)[0]
        if c not in (0x30, 0x31):
            raise self.error(f"expected '0' or '1' for {what}, found byte 0x{c:02x}", start)
        return c == 0x31

    def tensor(self, what: str = "tensor") -> np.ndarray:
        """resizable_tensor v2 as an array of shape (num_samples, k, nr, nc)."""
        start = self.pos
        self.expect_int(2, what + " version")
        dims = tuple(self.int(what + " dimension") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"negative dimension {dims} in {what}", start)
        count = int(np.prod(dims, dtype=np.int64))
        raw = self._take(4 * count, f"{what} data ({dims})")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self, what: str = "alias_tensor") -> tuple[int, int, int, int]:
        self.expect_int(1, what + " version")
        return tuple(self.int(what + " dimension") for _ in range(4))

    def at_end(self) -> bool:
        return self.pos == len(self.data)


# -- layer records --------------------------------------------------------------------------

def _split(params: np.ndarray, shapes: list[tuple[int, ...]], r: Reader, start: int,
           what: str) -> list[np.ndarray]:
    flat = params.reshape(-1)
    total = sum(int(np.prod(s)) for s in shapes)
    if total != flat.size:
        raise r.error(f"{what}: parameter tensor has {flat.size} values, its views need {total}",
                      start)
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[i:i + n].reshape(s).copy())
        i += n
    return out


def _read_con(r: Reader, name: str, start: int) -> Layer:
    params = r.tensor("con_ params")
    cfg = {k: r.int(k) for k in ("num_filters", "nr", "nc", "stride_y", "stride_x",
                                 "padding_y", "padding_x")}
    fshape = r.alias("con_ filters")
    bshape = r.alias("con_ biases")
    for k in ("learning_rate_multiplier", "weight_decay_multiplier",
              "bias_learning_rate_multiplier", "bias_weight_decay_multiplier"):
        cfg[k] = r.float(k)
    filters, biases = _split(params, [fshape, bshape], r, start, "con_")
    if fshape[0] != cfg["num_filters"] or fshape[2:] != (cfg["nr"], cfg["nc"]):
        raise r.error(f"con_: filter view {fshape} disagrees with settings {cfg}", start)
    return Layer("con", name, {"filters": filters, "biases": biases.reshape(-1)}, cfg, start)


def _read_affine(r: Reader, name: str, start: int) -> Layer:
    params = r.tensor("affine_ params")
    gshape = r.alias("affine_ gamma")
    bshape = r.alias("affine_ beta")
    mode = r.int("affine_ mode")
    gamma, beta = _split(params, [gshape, bshape], r, start, "affine_")
    return Layer("affine", name, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)},
                 {"mode": mode, "shape": gshape}, start)


def _read_pool(r: Reader, name: str, start: int) -> Layer:
    cfg = {k: r.int(k) for k in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")}
    return Layer("max_pool" if name.startswith("max") else "avg_pool", name, {}, cfg, start)


def _read_fc(r: Reader, name: str, start: int) -> Layer:
    cfg = {"num_outputs": r.int("fc_ num_outputs"), "num_inputs": r.int("fc_ num_inputs")}
    params = r.tensor("fc_ params")
    wshape = r.alias("fc_ weights")
    bshape = r.alias("fc_ biases")
    cfg["bias_mode"] = r.int("fc_ bias_mode")
    for k in ("learning_rate_multiplier", "weight_decay_multiplier",
              "bias_learning_rate_multiplier", "bias_weight_decay_multiplier"):
        cfg[k] = r.float(k)
    shapes = [wshape] + ([bshape] if int(np.prod(bshape)) else [])
    parts = _split(params, shapes, r, start, "fc_")
    out = {"weights": parts[0].reshape(wshape[0], -1)}
    if len(parts) > 1:
        out["biases"] = parts[1].reshape(-1)
    return Layer("fc", name, out, cfg, start)


_LAYER_READERS = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": lambda r, name, start: Layer("relu", name, {}, {}, start),
    "add_prev_": lambda r, name, start: Layer("add_prev", name, {}, {}, start),
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "fc_2": _read_fc,
}


def _read_layer(r: Reader) -> Layer:
    start = r.pos
    name = r.string("layer record name", max_len=64)
    reader = _LAYER_READERS.get(name)
    if reader is None:
        raise r.error(f"unknown layer record {name!r} (known: {sorted(_LAYER_READERS)})", start)
    return reader(r, name, start)


def _read_add_layer_tail(r: Reader, innermost: bool) -> None:
    """The book-keeping an add_layer writes after its layer record (state, scratch tensors)."""
    for what in ("this_layer_setup_called", "gradient_input_is_stale",
                 "get_output_and_gradient_input_disabled"):
        r.bool(what)
    r.tensor("x_grad")
    r.tensor("cached_output")
    if innermost:
        r.tensor("grad_final")
    else:
        r.tensor("params_grad")


def _read_loss(r: Reader) -> dict[str, Any]:
    start = r.pos
    name = r.string("loss record name", max_len=64)
    if name == "loss_metric_2":
        return {"name": name, "margin": r.float("margin"), "dist_thresh": r.float("dist_thresh")}
    if name == "loss_metric_":
        return {"name": name}
    raise r.error(f"unsupported loss record {name!r}", start)


def _read_input(r: Reader) -> dict[str, Any]:
    start = r.pos
    name = r.string("input layer name", max_len=64)
    if name == "input_rgb_image_sized":
        means = tuple(r.float(c) for c in ("avg_red", "avg_green", "avg_blue"))
        return {"name": name, "means": means, "nr": r.int("NR"), "nc": r.int("NC")}
    if name == "input_rgb_image":
        means = tuple(r.float(c) for c in ("avg_red", "avg_green", "avg_blue"))
        return {"name": name, "means": means}
    raise r.error(f"unsupported input layer {name!r}", start)


def parse_dnn(data: bytes, path: str = "<bytes>") -> DlibNet:
    """Parse a serialised ``add_loss_layer`` network; every byte must be consumed."""
    r = Reader(data, path)
    r.expect_int(1, "add_loss_layer version")
    loss = _read_loss(r)

    headers: list[str] = []
    while True:
        start = r.pos
        version = r.int("layer wrapper version")
        if version == 2:
            headers.append("add_layer")
        elif version == 1:
            headers.append("tag_or_skip")
        elif version == 3:
            break
        else:
            raise r.error(f"unexpected layer wrapper version {version}", start)
        if len(headers) > 100000:
            raise r.error("implausibly deep network")

    inp = _read_input(r)
    layers = [_read_layer(r)]
    _read_add_layer_tail(r, innermost=True)
    r.int("sample_expansion_factor")
    for kind in reversed(headers):
        if kind == "add_layer":
            layers.append(_read_layer(r))
            _read_add_layer_tail(r, innermost=False)
        else:
            layers.append(Layer("tag_or_skip", offset=r.pos))
    if not r.at_end():
        raise r.error(f"{len(r.data) - r.pos} unread bytes after the network")
    return DlibNet(path=str(path), loss=loss, input=inp, layers=layers, headers=headers,
                   num_bytes=len(r.data))


def read_dnn(path: str | os.PathLike) -> DlibNet:
    """Read and parse a dlib DNN file (for example dlib_face_recognition_resnet_model_v1.dat)."""
    with open(path, "rb") as f:
        data = f.read()
    return parse_dnn(data, os.fspath(path))
