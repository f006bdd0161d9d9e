"""Where a landmark detector's 68 points lie on the face model: a learned landmark embedding.

A face model ships 68 "landmark vertices", chosen by its authors for their own annotation
convention. dlib's 68 points (iBUG 300-W) follow another: on the default ICT model the detected
eye corners sit ~0.1 inter-ocular distances above ICT's eyelid vertices, the brows on another
edge, and the jaw contour on the face's visible outline, which moves over the cheek as the head
turns, where ICT's contour vertices stay put. Fitting the model's vertices to such points pulls
the shape (and the blendshapes) towards the difference. FLAME/DECA solve the same problem with a
landmark embedding: static surface points for the inner landmarks and, for the contour, points
that depend on the head's yaw. This module learns one from pictures of known 3D shape:

  - pictures: people of `benchmark_faces` (whole ICT heads, 100-mode identities with detail,
    photo-like skin), seeds apart from the evaluation's, yaw spread over +-50 degrees;
  - the detector (dlib, as the photo pipeline runs it) on each picture;
  - for every landmark, the face-area vertex whose projection lies closest to the detection on
    average (inter-ocular units, capped; hidden vertices count as the cap), among vertices near
    the model's own landmark vertex: one vertex for each inner landmark (17-67), one per yaw bin
    for each contour landmark (0-16).

The result (`LandmarkMap`) is small (68 + 17 x bins vertex ids, the bin edges and the residual
spread of each landmark) and ships with the package (`data/`); `landmark_calibration` remakes
it (`launch/calibrate_landmarks.py`). It is used by fitting when the face model is the one it
was made for (`for_model`); other models (BFM) keep their own landmark vertices.

The same map can instead keep the model's own vertices and carry, for each landmark, a 3D offset
in the head's frame from the vertex to where the detector puts its point (per yaw bin on the
contour; `learn_offsets`, least squares over calibration pictures): the default
(`landmark_map="calibrated"`, `OFFSETS_FILE`). The offsets turn with the head, so they hold at
any pose, and a point may sit off the surface (dlib's points lie behind it: as the head turns
they move less than the face does).
"""
from __future__ import annotations

import json
import pathlib
from typing import Dict, Optional

import flax.struct
import jax.numpy as jnp
import numpy as np

from facerecon_jax.geometry import camera as cam
from facerecon_jax.photo.detection import LANDMARK_SOURCES

DATA_DIR = pathlib.Path(__file__).parent / "data"


def files(landmarks: str = "mesh") -> tuple:
    """(learned-vertex map, offsets map) shipped for a landmark source: "mesh" (MediaPipe's face
    mesh started from dlib's points, the default) or "dlib" (dlib's 68-point predictor)."""
    if landmarks not in LANDMARK_SOURCES:
        raise ValueError(f"landmarks must be one of {LANDMARK_SOURCES}, got {landmarks!r}")
    return (DATA_DIR / f"landmark_map_ict_{landmarks}.json",
            DATA_DIR / f"landmark_offsets_ict_{landmarks}.json")


DEFAULT_FILE, OFFSETS_FILE = files("mesh")
CONTOUR = np.arange(17)


@flax.struct.dataclass
class LandmarkMap:
    static: jnp.ndarray            # (68,) int32 vertex of each landmark (contour: frontal bin)
    contour: jnp.ndarray           # (n_bins, 17) int32 contour vertices per yaw bin
    yaw_edges: jnp.ndarray         # (n_bins - 1,) float32 radians, bin boundaries
    # where the detector's point sits relative to its vertex, in the head's frame (model units, dm,
    # turning with the head): (68, 3), the contour's (n_bins, 17, 3) per yaw bin; None: on it
    offset: Optional[jnp.ndarray] = None
    contour_offset: Optional[jnp.ndarray] = None

    def _by_yaw(self, fixed, per_bin, angles):
        b = jnp.searchsorted(self.yaw_edges, angles[..., 1])
        out = jnp.broadcast_to(fixed, angles.shape[:-1] + fixed.shape)
        contour = (Ellipsis, slice(0, 17)) + (slice(None),) * (fixed.ndim - 1)
        return out.at[contour].set(per_bin[b])

    def vertices(self, angles) -> jnp.ndarray:
        """(B, 68) vertex ids for heads at Euler angles (B, 3) (yaw = angles[:, 1])."""
        return self._by_yaw(self.static, self.contour, angles)

    def offsets(self, angles) -> Optional[jnp.ndarray]:
        """(B, 68, 3) head-frame offsets of the landmarks from their vertices (None: none)."""
        if self.offset is None:
            return None
        return self._by_yaw(self.offset, self.contour_offset, angles)

    def locate(self, posed, rotation, angles, camera) -> jnp.ndarray:
        """(B, 68, 2) landmark pixels (y down) of heads whose vertices are posed (B, V, 3)
        (world points) by rotation (B, 3, 3) from Euler angles (B, 3), seen by `camera`."""
        idx = self.vertices(angles)
        pts = jnp.take_along_axis(posed, idx[..., None], axis=-2)
        off = self.offsets(angles)
        if off is not None:
            pts = pts + cam.rotate(off, rotation)
        return cam.to_screen(pts, camera)[..., :2]


def to_json(m: LandmarkMap, info: dict, covariance: Optional[np.ndarray] = None) -> str:
    """The map (and the detector's error covariance about it, one row per line) as JSON."""
    d = {"static": np.asarray(m.static).tolist(), "contour": np.asarray(m.contour).tolist(),
         "yaw_edges_deg": np.degrees(np.asarray(m.yaw_edges)).tolist()}
    if m.offset is not None:
        d["offset"] = np.round(np.asarray(m.offset, np.float64), 6).tolist()
        d["contour_offset"] = np.round(np.asarray(m.contour_offset, np.float64), 6).tolist()
    text = json.dumps(dict(d, info=info), indent=1)
    if covariance is None:
        return text
    rows = ",\n  ".join(json.dumps(r) for r in np.round(np.asarray(covariance), 8).tolist())
    return text[:-2] + ',\n "noise_covariance": [\n  ' + rows + "\n ]\n}"


def from_json(text: str) -> tuple:
    d = json.loads(text)
    off = {k: jnp.asarray(d[k], jnp.float32) for k in ("offset", "contour_offset") if k in d}
    return (LandmarkMap(static=jnp.asarray(d["static"], jnp.int32),
                        contour=jnp.asarray(d["contour"], jnp.int32),
                        yaw_edges=jnp.asarray(np.radians(d["yaw_edges_deg"]), jnp.float32),
                        **off),
            d["info"])


def for_model(model, path: Optional[pathlib.Path] = None) -> Optional[LandmarkMap]:
    """The shipped map when `model` is the one it was learned for (same vertex count and the
    same landmark vertices), else None (use the model's own landmark vertices)."""
    path = pathlib.Path(path) if path else DEFAULT_FILE
    if not path.exists():
        return None
    m, info = from_json(path.read_text())
    if (info.get("n_vertices") != model.n_vertices
            or info.get("model_landmarks") != np.asarray(model.landmarks).tolist()):
        return None
    return m


def _calibration(path: pathlib.Path, remake: str) -> dict:
    """A shipped calibration file's contents, or a clear error naming the command that remakes
    it."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: the landmark calibration file is missing (it ships with "
                                f"the package; `{remake}` remakes it)")
    return json.loads(path.read_text())


def detector_noise(path: Optional[pathlib.Path] = None) -> np.ndarray:
    """(68,) how far each of the detector's points strays from the best surface point, in
    inter-ocular distances (the capped mean residual of the calibration, `learn_map`): the
    detector's own scatter per landmark (jaw contour ~0.2, inner points ~0.07-0.15), measured
    on pictures apart from the evaluation's. `losses.landmark_weights` turns it into inverse-
    variance weights."""
    path = pathlib.Path(path) if path else DEFAULT_FILE
    d = _calibration(path, "python -m launch.calibrate_landmarks")
    noise = np.asarray(d["info"]["residual"], np.float64)
    if noise.shape != (68,) or not np.all(noise > 0):
        raise ValueError(f"{path}: info.residual must hold 68 positive numbers, got "
                         f"shape {noise.shape}")
    return noise


def detector_covariance(path: Optional[pathlib.Path] = None) -> np.ndarray:
    """(136, 136) the covariance of the detector's error about where the calibrated offsets put
    its points (x0, y0, x1, y1, ...; inter-ocular distances squared; `error_covariance` of the
    calibration pictures, apart from the evaluation's): the errors of one picture's points are
    far from independent (a shift or scale of the whole shape, the jaw contour moving as one),
    and `losses.landmark_precision` weighs them so."""
    path = pathlib.Path(path) if path else OFFSETS_FILE
    remake = "python -m launch.calibrate_landmarks --kind offsets"
    d = _calibration(path, remake)
    if "noise_covariance" not in d:
        raise ValueError(f"{path}: holds no noise_covariance (made before it was calibrated; "
                         f"`{remake}` remakes it)")
    cov = np.asarray(d["noise_covariance"], np.float64)
    if cov.shape != (136, 136) or not np.allclose(cov, cov.T):
        raise ValueError(f"{path}: noise_covariance must be a symmetric 136 x 136 matrix, got "
                         f"shape {cov.shape}")
    return cov


def detector_noise_by_yaw(path: Optional[pathlib.Path] = None) -> tuple:
    """((|yaw| degrees, scatter / the frontal scatter), ...): how much farther the detector's
    inner points stray as the head turns (`noise_by_yaw` of the calibration pictures, apart
    from the evaluation's; dlib's roughly doubles by 40 degrees). `losses.landmark` divides a
    picture's landmark weights by the ratio squared at its fitted yaw."""
    path = pathlib.Path(path) if path else OFFSETS_FILE
    remake = "python -m launch.calibrate_landmarks --kind offsets"
    by_yaw = _calibration(path, remake)["info"].get("noise_by_yaw")
    if by_yaw is None:
        raise ValueError(f"{path}: holds no info.noise_by_yaw (made before it was calibrated; "
                         f"`{remake}` remakes it)")
    yaw, ratio = (np.asarray(by_yaw[k], np.float64) for k in ("yaw_deg", "ratio"))
    if yaw.ndim != 1 or yaw.shape != ratio.shape or not (np.all(np.diff(yaw) > 0)
                                                        and np.all(ratio > 0)):
        raise ValueError(f"{path}: info.noise_by_yaw must hold increasing yaw_deg and as many "
                         f"positive ratios, got {by_yaw}")
    return tuple((float(a), float(r)) for a, r in zip(yaw, ratio))


# --------------------------------------------------------------------------- learning it

def visible_vertices(screen: np.ndarray, depth: np.ndarray, n: int, eps: float = 0.02
                     ) -> np.ndarray:
    """(n,) bool: vertices 0..n-1 (screen (V, 3) as x, y, z_cam) not hidden by the rendered
    depth buffer (H, W; 0 = empty) at their pixel."""
    h, w = depth.shape
    xy = np.round(screen[:n, :2]).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    vis = np.zeros(n, bool)
    xi, yi = np.clip(xy[:, 0], 0, w - 1), np.clip(xy[:, 1], 0, h - 1)
    d = depth[yi, xi]
    vis[inside] = (d[inside] > 0) & (screen[:n, 2][inside] <= d[inside] + eps)
    return vis


def choose_vertices(costs: np.ndarray) -> np.ndarray:
    """costs (N, 68, C) per picture, landmark and candidate -> (68,) index of the candidate
    with the lowest mean cost."""
    return np.argmin(costs.mean(0), axis=-1)


def learn_map(detections: np.ndarray, screens: np.ndarray, visible: np.ndarray,
              yaws: np.ndarray, model_landmarks: np.ndarray, rest_shape: np.ndarray,
              yaw_edges: np.ndarray, radius: float = 0.3, contour_radius: float = 0.5,
              cap: float = 0.3) -> Dict[str, np.ndarray]:
    """The embedding from calibration pictures.

    detections (N, 68, 2) detected landmarks, screens (N, V, 2) projected face-area vertices of
    the true posed heads, visible (N, V) bool, yaws (N,) radians, model_landmarks (68,) the
    model's own landmark vertices, rest_shape (V, 3) the model's mean shape (candidates of a
    landmark: vertices within `radius` dm of its model vertex, `contour_radius` for the
    contour), yaw_edges (n_bins - 1,) radians. Cost of a candidate in a picture: its distance to
    the detection in inter-ocular units, capped at `cap` (hidden: the cap).
    Returns static (68,), contour (n_bins, 17), and the mean capped residual of each choice.
    """
    iod = np.linalg.norm(detections[:, 36] - detections[:, 45], axis=-1)        # (N,)
    static = np.asarray(model_landmarks).copy()
    resid = np.zeros(68)
    n_bins = len(yaw_edges) + 1
    bins = np.searchsorted(yaw_edges, yaws)
    contour = np.tile(static[:17], (n_bins, 1))
    contour_resid = np.full((n_bins, 17), np.nan)
    for k in range(68):
        r = contour_radius if k < 17 else radius
        cand = np.nonzero(np.linalg.norm(rest_shape - rest_shape[model_landmarks[k]], axis=1)
                          < r)[0]
        d = np.linalg.norm(screens[:, cand, :] - detections[:, k, None, :], axis=-1)
        c = np.where(visible[:, cand], np.minimum(d / iod[:, None], cap), cap)   # (N, C)
        best = int(np.argmin(c.mean(0)))
        static[k], resid[k] = cand[best], c.mean(0)[best]
        if k < 17:
            for b in range(n_bins):
                sel = bins == b
                if sel.sum() >= 3:
                    j = int(np.argmin(c[sel].mean(0)))
                    contour[b, k], contour_resid[b, k] = cand[j], c[sel].mean(0)[j]
    # the static contour entry is the frontal bin's
    static[:17] = contour[np.searchsorted(yaw_edges, 0.0)]
    return {"static": static.astype(np.int32), "contour": contour.astype(np.int32),
            "residual": resid, "contour_residual": contour_resid}


def learn_offsets(detections: np.ndarray, world: np.ndarray, rotations: np.ndarray,
                  camera, yaws: np.ndarray, yaw_edges: np.ndarray, prior_sd: float = 0.05,
                  noise_px: float = 5.0, cap: float = 0.3, iterations: int = 3,
                  shrink: float = 0.1) -> Dict[str, np.ndarray]:
    """Where the detector's points sit relative to the model's landmark vertices, as a 3D offset
    in the head's frame: one per inner landmark, one per yaw bin per contour landmark.

    detections (N, 68, 2) detected pixels (y down); world (N, 68, 3) the true heads' landmark
    vertices posed in the world; rotations (N, 3, 3) the heads' rotations; `camera` the
    pictures' `camera.Camera`; yaws (N,) radians; yaw_edges (n_bins - 1,) radians. For landmark
    k the offset d minimises sum_i |det_ik - screen(X_ik + R_i d)|^2 / noise_px^2
    + |d|^2 / prior_sd^2 (Gauss-Newton: `iterations` linearisations of `camera.to_screen`; the
    prior keeps what the views do not see, e.g. depth in a narrow yaw bin, near 0). Detections
    further than `cap` inter-ocular distances from the vertex are left out (failed ones).
    Returns offset (68, 3), contour_offset (n_bins, 17, 3) (model units), the RMS residual
    per landmark in inter-ocular distances before and after ("before", "after": (68,)) and the
    covariance of what remains (`error_covariance`, (136, 136), inter-ocular units squared)
    and how its scatter grows with yaw (`noise_by_yaw`)."""
    import jax  # noqa: PLC0415

    det = np.asarray(detections, np.float64)
    world = np.asarray(world, np.float64)
    rot = np.asarray(rotations, np.float64)
    n = len(det)
    iod = np.linalg.norm(det[:, 36] - det[:, 45], axis=-1)                      # (N,)

    def to_px(p):
        return cam.to_screen(p, camera)[..., :2]
    screen = jax.jit(to_px)
    jacobian = jax.jit(jax.vmap(jax.jacfwd(to_px)))                             # (n, 2, 3)

    base = np.asarray(screen(world), np.float64)
    keep = np.linalg.norm(det - base, axis=-1) <= cap * iod[:, None]           # (N, 68)
    bins = np.searchsorted(yaw_edges, yaws)
    n_bins = len(yaw_edges) + 1

    def solve(k, sel):
        d = np.zeros(3)
        sel = sel & keep[:, k]
        if not np.any(sel):
            return d
        for _ in range(iterations):
            p = world[sel, k] + rot[sel] @ d
            a = np.asarray(jacobian(jnp.asarray(p, jnp.float32)), np.float64) @ rot[sel]
            r = det[sel, k] - np.asarray(screen(jnp.asarray(p, jnp.float32)), np.float64)
            lhs = np.einsum("nij,nik->jk", a, a) / noise_px ** 2 + np.eye(3) / prior_sd ** 2
            rhs = np.einsum("nij,ni->j", a, r + a @ d) / noise_px ** 2
            d = np.linalg.solve(lhs, rhs)
        return d

    offset = np.zeros((68, 3))
    contour_offset = np.zeros((n_bins, 17, 3))
    for k in range(17, 68):
        offset[k] = solve(k, np.ones(n, bool))
    for k in range(17):
        for b in range(n_bins):
            contour_offset[b, k] = solve(k, bins == b)
    offset[:17] = contour_offset[np.searchsorted(yaw_edges, 0.0)]   # the frontal bin's
    moved = np.broadcast_to(offset, (n, 68, 3)).copy()
    moved[:, :17] = contour_offset[bins]
    after = np.asarray(screen(world + np.einsum("nij,nkj->nki", rot, moved)), np.float64)

    def rms(p):
        e = np.linalg.norm(det - p, axis=-1) / iod[:, None]
        return np.sqrt(np.sum(np.where(keep, e ** 2, 0), 0) / np.maximum(keep.sum(0), 1))
    residual = (det - after) / iod[:, None, None]
    return {"offset": offset, "contour_offset": contour_offset, "before": rms(base),
            "after": rms(after), "covariance": error_covariance(residual, cap, shrink),
            "noise_by_yaw": noise_by_yaw(residual, yaws, cap=cap)}


def noise_by_yaw(residuals: np.ndarray, yaws: np.ndarray, bin_degrees: float = 10.0,
                 cap: float = 0.3, points=slice(17, 68)) -> Dict[str, list]:
    """How the detector's scatter grows with the head's yaw: the RMS of the inner points'
    residuals (N, 68, 2; inter-ocular distances; points beyond `cap` left out as failures) in
    bins of |yaw| (radians in, `bin_degrees` wide), each as a ratio to the first (frontal) bin's.
    Returns {"yaw_deg": bin centres, "ratio": ..., "rms": ...}; bins with no picture are
    dropped."""
    e2 = np.sum(np.asarray(residuals, np.float64)[:, points] ** 2, axis=-1)     # (N, P)
    keep = e2 <= cap ** 2
    deg = np.degrees(np.abs(np.asarray(yaws, np.float64)))
    centres, rms = [], []
    for lo in np.arange(0.0, deg.max() + 1e-9, bin_degrees):
        sel = (deg >= lo) & (deg < lo + bin_degrees)
        n = keep[sel].sum()
        if n:
            centres.append(lo + bin_degrees / 2)
            rms.append(float(np.sqrt(np.sum(np.where(keep[sel], e2[sel], 0.0)) / n)))
    rms = np.asarray(rms)
    return {"yaw_deg": [float(c) for c in centres], "ratio": np.round(rms / rms[0], 4).tolist(),
            "rms": np.round(rms, 4).tolist()}


def error_covariance(residuals: np.ndarray, cap: float = 0.3, shrink: float = 0.1) -> np.ndarray:
    """(136, 136) the detector's error covariance over x0, y0, x1, y1, ... from residuals
    (N, 68, 2) (inter-ocular units, the detections minus where the map puts the points): the
    mean of r r^T over every picture, each point's residual shortened to `cap` (a failed point
    counts as a large error, not as an arbitrarily large one), moved by `shrink` towards its
    diagonal (a covariance of 136 coordinates from a few hundred pictures: the full estimate
    weighs its smallest directions too much on new pictures)."""
    r = np.asarray(residuals, np.float64)
    e = np.linalg.norm(r, axis=-1, keepdims=True)
    r = (r * np.minimum(1.0, cap / np.maximum(e, 1e-12))).reshape(len(r), -1)
    cov = r.T @ r / len(r)
    return (1.0 - shrink) * cov + shrink * np.diag(np.diag(cov))
