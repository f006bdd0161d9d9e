"""TFLite graphs run in JAX (facerecon_jax.photo.tflite_graph): each operator against a direct
numpy implementation of TFLite's definition, a chained graph under jit, and bad files refused.
"""
import numpy as np
import pytest

from facerecon_jax.photo import tflite_graph as tg


def _same_pad(size, k, s, d=1):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2, out


def _np_conv(x, w, b, stride, padding, depthwise=False, dilation=(1, 1)):
    """TFLite CONV_2D (w: O, kh, kw, I) / DEPTHWISE_CONV_2D (w: 1, kh, kw, C) by loops."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[1:3]
    (sh, sw), (dh, dw) = stride, dilation
    if padding == 0:
        t, bt, oh = _same_pad(h, kh, sh, dh)
        lft, r, ow = _same_pad(wd, kw, sw, dw)
    else:
        t = bt = lft = r = 0
        oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (wd - (kw - 1) * dw - 1) // sw + 1
    xp = np.zeros((n, h + t + bt, wd + lft + r, c))
    xp[:, t:t + h, lft:lft + wd] = x
    co = w.shape[3] if depthwise else w.shape[0]
    out = np.zeros((n, oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for bb in range(kw):
                    px = xp[:, i * sh + a * dh, j * sw + bb * dw]          # (n, c)
                    if depthwise:
                        out[:, i, j] += px * w[0, a, bb]
                    else:
                        out[:, i, j] += px @ w[:, a, bb, :].T
    return out + b


def _np_maxpool(x, window, stride, padding):
    n, h, wd, c = x.shape
    (kh, kw), (sh, sw) = window, stride
    if padding == 0:
        t, bt, oh = _same_pad(h, kh, sh)
        lft, r, ow = _same_pad(wd, kw, sw)
    else:
        t = bt = lft = r = 0
        oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    xp = np.full((n, h + t + bt, wd + lft + r, c), -np.inf)
    xp[:, t:t + h, lft:lft + wd] = x
    out = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw].max(axis=(1, 2))
    return out


def _op(kind, inputs, output, **options):
    return tg.Op(kind, tuple(inputs), output, tuple(options.items()))


def _graph(ops, outputs, shape):
    return tg.Graph(tuple(ops), 0, tuple(outputs), tuple(f"out{i}" for i in outputs), shape)


@pytest.mark.parametrize("stride,padding", [((1, 1), 0), ((2, 2), 0), ((2, 2), 1), ((1, 2), 0)])
def test_convolutions_match_tflite_definition(stride, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8, 3)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    dw = rng.normal(size=(1, 5, 5, 3)).astype(np.float32)
    b, db = rng.normal(size=4).astype(np.float32), rng.normal(size=3).astype(np.float32)
    common = dict(stride=stride, dilation=(1, 1), padding=padding, activation=0)
    ops = [_op("CONV_2D", [0, 10, 11], 1, **common),
           _op("DEPTHWISE_CONV_2D", [0, 12, 13], 2, **common)]
    consts = {"10": w, "11": b, "12": dw, "13": db}
    conv, depth = tg.run(_graph(ops, (1, 2), x.shape), consts, x)
    np.testing.assert_allclose(conv, _np_conv(x, w, b, stride, padding), atol=1e-4)
    np.testing.assert_allclose(depth, _np_conv(x, dw, db, stride, padding, depthwise=True),
                               atol=1e-4)


def test_chained_graph_under_jit_matches_numpy():
    """conv -> PReLU -> max pool (SAME, odd size) -> channel pad -> add -> ReLU6 -> depthwise
    (stride 2) -> ReLU -> reshape -> concatenation: the kind of chain MediaPipe's networks are,
    compiled as one function."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 11, 11, 2)).astype(np.float32)
    w1 = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
    b1 = rng.normal(size=4).astype(np.float32)
    alpha = rng.uniform(0.1, 0.3, size=(1, 1, 4)).astype(np.float32)
    w2 = rng.normal(size=(6, 1, 1, 4)).astype(np.float32)
    b2 = np.zeros(6, np.float32)
    dw = rng.normal(size=(1, 3, 3, 6)).astype(np.float32)
    db = rng.normal(size=6).astype(np.float32)
    ops = [_op("CONV_2D", [0, 20, 21], 1, stride=(1, 1), dilation=(1, 1), padding=0,
               activation=0),
           _op("PRELU", [1, 22], 2),
           _op("MAX_POOL_2D", [2], 3, window=(2, 2), stride=(2, 2), padding=0, activation=0),
           _op("PAD", [3], 4, paddings=((0, 0), (0, 0), (0, 0), (0, 2))),
           _op("CONV_2D", [3, 23, 24], 5, stride=(1, 1), dilation=(1, 1), padding=1,
               activation=0),
           _op("ADD", [4, 5], 6, activation=3),
           _op("DEPTHWISE_CONV_2D", [6, 25, 26], 7, stride=(2, 2), dilation=(1, 1), padding=0,
               activation=0),
           _op("RELU", [7], 8),
           _op("RESHAPE", [8], 9, shape=(1, 54)),
           _op("RESHAPE", [6], 10, shape=(1, 216)),
           _op("CONCATENATION", [9, 10], 11, axis=1, activation=0)]
    consts = {"20": w1, "21": b1, "22": alpha, "23": w2, "24": b2, "25": dw, "26": db}
    (out,) = tg.run(_graph(ops, (11,), x.shape), consts, x)

    y = _np_conv(x, w1, b1, (1, 1), 0)
    y = np.where(y >= 0, y, alpha * y)
    p = _np_maxpool(y, (2, 2), (2, 2), 0)                       # 11 -> 6, padded
    padded = np.concatenate([p, np.zeros(p.shape[:3] + (2,))], -1)
    s = np.clip(padded + _np_conv(p, w2, b2, (1, 1), 1), 0, 6)
    d = np.maximum(_np_conv(s, dw, db, (2, 2), 0, depthwise=True), 0)
    want = np.concatenate([d.reshape(3, -1), s.reshape(3, -1)], 1)
    assert out.shape == (3, 54 + 216)
    np.testing.assert_allclose(out, want, atol=1e-4)


def test_unreadable_file_names_itself(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(tg.GraphError, match="broken.tflite"):
        tg.read(bad)


def test_load_refuses_another_network():
    """`load` reads a file once and refuses one whose input is not what the caller runs."""
    from facerecon_jax.photo import mediapipe_files
    path = str(mediapipe_files.network_file(mediapipe_files.FACE_DETECTOR))
    graph, consts = tg.load(path, (128, 128, 3), 2, "the detector")
    assert graph.input_shape == (1, 128, 128, 3) and len(graph.outputs) == 2
    assert tg.load(path, (128, 128, 3), 2, "the detector")[0] is graph       # read once
    with pytest.raises(tg.GraphError, match="not the face mesh"):
        tg.load(path, (192, 192, 3), 2, "the face mesh")
