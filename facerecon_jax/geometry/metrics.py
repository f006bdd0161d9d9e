"""Evaluation metrics (docs/design.md §12): MICC-style RMSE, NoW errors, landmark NME.

Pure numpy / scipy / libigl, float64 throughout, no JAX. Meshes are in the project's units
(decimetres); ``units_to_mm`` (default 100: 1 dm = 100 mm) converts distances to millimetres,
which is what the metrics report.

Building blocks
  similarity_transform   Umeyama's least-squares similarity, ``dst ~ s R src + t``, with the
                         reflection correction (R is always a proper rotation, det R = +1).
  crop_radius            points within a radius of a centre (inclusive).
  closest_points         exact closest point on a triangle mesh (libigl's
                         point_mesh_squared_distance: an axis-aligned bounding-box tree of the
                         triangles, searched exactly; ~15x faster than trimesh's r-tree query,
                         which the evaluation benchmark spent minutes in).
  point_to_surface       the signed point-to-plane distance along the closest triangle's normal
                         (right-handed winding), or the Euclidean point-to-surface distance with
                         ``unsigned=True``.
  icp_similarity         ICP with isotropic scale (see its docstring for the correspondence
                         direction), optional trimming of the worst pairs.

Protocols
  micc_rmse       GT points within 95 mm of the nose tip; predicted mesh aligned to them by ICP
                  with isotropic scale (started from landmark correspondences, or else from
                  several scales about the centroid/RMS match); point-to-plane RMSE of the GT
                  points against the aligned predicted surface, in mm.
  now_errors      similarity alignment of the predicted mesh on the 7 NoW landmarks, then the
                  unsigned scan-to-mesh distances (every GT scan point to the aligned predicted
                  surface); median / mean / std in mm.
  landmark_nme    mean 2D landmark error over the inter-ocular (outer eye corner) distance.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
from scipy.spatial import cKDTree

# The 7 NoW landmarks as 0-based indices into the iBUG 68-point scheme: the 4 eye corners, the
# bottom centre of the nose and the 2 mouth corners. Order used here: right eye outer corner
# (36), right eye inner corner (39), left eye inner corner (42), left eye outer corner (45), nose
# bottom centre / subnasale (33), right mouth corner (48), left mouth corner (54) ("right" and
# "left" from the subject's point of view).
NOW_LANDMARKS_68 = (36, 39, 42, 45, 33, 48, 54)

# Outer eye corners in the iBUG 68 scheme (0-based), for the inter-ocular normalisation.
OUTER_EYE_CORNERS_68 = (36, 45)

Similarity = Tuple[float, np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- similarity
def similarity_transform(src, dst, scale: bool = True) -> Similarity:
    """Least-squares similarity (Umeyama 1991) mapping ``src`` onto ``dst``.

    Minimises ``sum_i |dst_i - (s R src_i + t)|^2`` over a proper rotation R (det +1; a
    reflection is never returned, even for reflected or degenerate inputs), a scale s > 0
    (s = 1 when ``scale`` is False: a rigid fit) and a translation t.

    Args:
      src, dst: (N, 3) corresponding points, N >= 3 and not all collinear for a unique R.
    Returns:
      (s, R (3, 3), t (3,)) with ``dst ~ s * src @ R.T + t``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"src and dst must both be (N, 3), got {src.shape} and {dst.shape}")
    if len(src) == 0:
        raise ValueError("similarity_transform needs at least one point pair")
    mu_src = src.mean(axis=0)
    mu_dst = dst.mean(axis=0)
    x = src - mu_src
    y = dst - mu_dst
    cov = y.T @ x / len(src)                      # (3, 3) cross-covariance, dst x src
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # would be a reflection: flip the weakest axis
        d[2] = -1.0
    rot = (u * d) @ vt
    if scale:
        var_src = np.mean(np.sum(x * x, axis=1))
        s = float(np.dot(sing, d) / var_src) if var_src > 0 else 1.0
    else:
        s = 1.0
    t = mu_dst - s * rot @ mu_src
    return s, rot, t


def apply_similarity(points, s, R, t) -> np.ndarray:
    """``s * R @ p + t`` for every row p of ``points`` (..., 3)."""
    points = np.asarray(points, np.float64)
    return s * points @ np.asarray(R, np.float64).T + np.asarray(t, np.float64)


def compose_similarity(a: Similarity, b: Similarity) -> Similarity:
    """The similarity ``x -> a(b(x))``."""
    sa, ra, ta = a
    sb, rb, tb = b
    return sa * sb, ra @ rb, sa * ra @ tb + ta


def invert_similarity(sim: Similarity) -> Similarity:
    """The inverse of ``x -> s R x + t``."""
    s, r, t = sim
    r = np.asarray(r, np.float64)
    return 1.0 / s, r.T, -(r.T @ np.asarray(t, np.float64)) / s


# --------------------------------------------------------------------------- cropping
def crop_radius(points, centre, radius) -> np.ndarray:
    """(N,) bool: which points lie within ``radius`` of ``centre`` (Euclidean, inclusive)."""
    points = np.asarray(points, np.float64)
    centre = np.asarray(centre, np.float64).reshape(1, -1)
    return np.linalg.norm(points - centre, axis=-1) <= radius


# --------------------------------------------------------------------------- point to surface
def _mesh_arrays(vertices, faces) -> Tuple[np.ndarray, np.ndarray]:
    vertices = np.ascontiguousarray(vertices, np.float64)
    faces = np.ascontiguousarray(faces, np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"faces must be (F, 3) with F >= 1, got {faces.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"faces index vertices 0..{faces.max()}, but there are "
                         f"{len(vertices)} vertices")
    return vertices, faces


def closest_points(points, vertices, faces) -> Tuple[np.ndarray, np.ndarray]:
    """The exact closest point on a triangle mesh to each of ``points`` (N, 3): (closest (N, 3),
    face ids (N,) int). libigl's AABB-tree query; where the closest point lies on an edge or a
    vertex shared by several triangles, any one of them is returned."""
    import igl  # noqa: PLC0415  (a large extension: loaded when first used)

    vertices, faces = _mesh_arrays(vertices, faces)
    points = np.ascontiguousarray(points, np.float64).reshape(-1, 3)
    if len(points) == 0:
        return np.zeros((0, 3)), np.zeros(0, np.int64)
    _, fid, closest = igl.point_mesh_squared_distance(points, vertices, faces)
    return np.asarray(closest, np.float64), np.asarray(fid, np.int64).reshape(-1)


def face_normals(vertices, faces) -> np.ndarray:
    """(F, 3) unit normals ``(v1 - v0) x (v2 - v0)`` normalised; zeros for degenerate faces."""
    tri = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)


def point_to_surface(points, vertices, faces, unsigned: bool = False
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances from points to a triangle mesh.

    The closest point on the mesh is exact (:func:`closest_points`).

    Args:
      points: (N, 3).
      vertices, faces: the mesh, (V, 3) float and (F, 3) int.
      unsigned: False (default): the signed point-to-plane distance ``(p - c) . n_f`` with c the
        closest point and n_f the unit normal of the closest triangle f (positive on the side the
        normal points to; the normal follows the winding, ``(v1 - v0) x (v2 - v0)``). When the
        closest point lies inside a triangle this is +-the Euclidean distance; on an edge or a
        vertex it is the component along that triangle's normal. True: the Euclidean distance
        ``|p - c|`` (>= 0).
    Returns:
      (distances (N,), closest points (N, 3), face ids (N,) int).
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    vertices, faces = _mesh_arrays(vertices, faces)
    if len(points) == 0:
        return np.zeros(0), np.zeros((0, 3)), np.zeros(0, np.int64)
    closest, fid = closest_points(points, vertices, faces)
    if unsigned:
        return np.linalg.norm(points - closest, axis=1), closest, fid
    normals = face_normals(vertices, faces)[fid]
    signed = np.sum((points - closest) * normals, axis=1)
    degenerate = ~np.any(normals != 0, axis=1)        # no plane: fall back to the distance
    signed[degenerate] = np.linalg.norm(points - closest, axis=1)[degenerate]
    return signed, closest, fid


# --------------------------------------------------------------------------- ICP
def icp_similarity(src_vertices, dst_points, init: Optional[Similarity] = None,
                   iterations: int = 50, tol: float = 1e-7, trim: Optional[float] = None,
                   src_faces=None) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Align ``src_vertices`` (a predicted mesh) to ``dst_points`` (ground truth) with a
    similarity (isotropic scale) by iterative closest points.

    Correspondences: for every destination (ground-truth) point, its nearest source point under
    the current transform. This direction suits a cropped ground truth: every kept GT point has a
    partner on the predicted face, while predicted vertices outside the crop (forehead, ears,
    neck) are simply never chosen. The nearest source vertex (``src_faces`` None, a cKDTree
    built once; the query maps dst points back by the inverse similarity, which preserves
    nearest-neighbour order), or, when ``src_faces`` is given, the exact closest point on the
    source surface (more accurate for coarse meshes, several times slower). Each iteration then
    refits the similarity over the pairs by :func:`similarity_transform`.

    Args:
      src_vertices: (V, 3) source points/vertices.
      dst_points: (N, 3) target points.
      init: (s, R, t) starting transform; None: centroids matched and RMS radii about them
        matched, R = identity (fine for small rotations only: pass an init otherwise).
      iterations: at most this many refits.
      tol: stop when the mean squared distance improves by no more than ``tol`` times its
        previous value (relative), or reaches 0.
      trim: None, or a fraction in [0, 1) of the pairs with the largest distances dropped at
        every iteration (trimmed ICP, robust to GT points without a partner).
      src_faces: (F, 3) faces of the source mesh: correspondences on the surface (see above).
    Returns:
      (s, R, t, history): the transform maps src into dst's frame; ``history[k]`` is the mean
      squared distance (dst units^2) of the pairs used, before refit k; ``history[-1]`` is that of
      the returned transform.
    """
    src = np.asarray(src_vertices, np.float64).reshape(-1, 3)
    dst = np.asarray(dst_points, np.float64).reshape(-1, 3)
    if len(src) == 0 or len(dst) < 3:
        raise ValueError("icp_similarity needs source points and at least 3 target points")
    if trim is not None and not 0.0 <= trim < 1.0:
        raise ValueError(f"trim must be in [0, 1), got {trim}")
    if init is None:
        sim = _centroid_rms_init(src, dst)
    else:
        s0, r0, t0 = init
        sim = (float(s0), np.asarray(r0, np.float64), np.asarray(t0, np.float64))
    n_keep = len(dst)
    if trim:
        n_keep = max(3, int(round((1.0 - trim) * len(dst))))

    if src_faces is None:
        tree = cKDTree(src)

        def partners(q):                          # q: dst points in the src frame
            return src[tree.query(q, workers=-1)[1]]
    else:
        src_v, src_f = _mesh_arrays(src, src_faces)

        def partners(q):
            return closest_points(q, src_v, src_f)[0]

    def pairs(sim_):
        q = apply_similarity(dst, *invert_similarity(sim_))
        p = partners(q)
        d2 = np.sum((apply_similarity(p, *sim_) - dst) ** 2, axis=1)
        if n_keep < len(dst):
            keep = np.argpartition(d2, n_keep - 1)[:n_keep]
            return p[keep], dst[keep], float(d2[keep].mean())
        return p, dst, float(d2.mean())

    history = []
    prev = None
    converged = False
    for _ in range(int(iterations)):
        p, q, mse = pairs(sim)
        history.append(mse)
        if mse == 0.0 or (prev is not None and prev - mse <= tol * prev):
            converged = True
            break
        prev = mse
        sim = similarity_transform(p, q)
    if not converged:
        history.append(pairs(sim)[2])
    s, r, t = sim
    return float(s), r, t, np.asarray(history)


def _centroid_rms_init(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """R = I, scale matching the RMS distances to the centroids, centroids matched."""
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    rms_s = np.sqrt(np.mean(np.sum((src - mu_s) ** 2, axis=1)))
    rms_d = np.sqrt(np.mean(np.sum((dst - mu_d) ** 2, axis=1)))
    s = rms_d / rms_s if rms_s > 0 else 1.0
    return float(s), np.eye(3), mu_d - s * mu_s


# --------------------------------------------------------------------------- MICC
# Initial scales tried by micc_rmse without landmarks, as factors of the centroid/RMS scale: the
# RMS match underestimates the scale when the prediction covers more than the GT crop.
MICC_INIT_SCALE_FACTORS = tuple(2.0 ** (k / 4.0) for k in range(-2, 5))   # 0.71 .. 2.0
MICC_INIT_ITERATIONS = 15
MICC_INIT_MAX_POINTS = 2000        # the short runs use evenly strided subsets of at most this
                                   # many GT points and predicted vertices (badly scaled starts
                                   # make kd-tree queries slow)


def _best_scale_start(src: np.ndarray, dst: np.ndarray, trim: Optional[float]) -> Similarity:
    """Short vertex ICP runs from the centroid/RMS init with each of MICC_INIT_SCALE_FACTORS
    (centroids kept matched); the result with the lowest mean squared distance. The pairing goes
    from every GT point to the prediction, so a prediction larger than the crop costs nothing
    at the right pose, while a wrong scale leaves GT points off the surface."""
    s0, _, _ = _centroid_rms_init(src, dst)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    src = src[::max(1, -(-len(src) // MICC_INIT_MAX_POINTS))]
    dst = dst[::max(1, -(-len(dst) // MICC_INIT_MAX_POINTS))]
    best, best_mse = None, np.inf
    for k in MICC_INIT_SCALE_FACTORS:
        s = s0 * k
        s, r, t, hist = icp_similarity(src, dst, init=(s, np.eye(3), mu_d - s * mu_s),
                                       iterations=MICC_INIT_ITERATIONS, trim=trim)
        if hist[-1] < best_mse:
            best, best_mse = (s, r, t), hist[-1]
    return best


def micc_rmse(pred_vertices, pred_faces, gt_points, gt_nose_tip, *, radius_mm: float = 95.0,
              units_to_mm: float = 100.0, init_landmarks=None, icp: bool = True,
              icp_iterations: int = 50, icp_trim: Optional[float] = None,
              icp_surface: bool = False) -> Dict[str, object]:
    """MICC Florence protocol (docs/design.md §12): point-to-plane RMSE in mm after ICP with scale.

    1. Keep the GT points within ``radius_mm`` of ``gt_nose_tip`` (GT frame, inclusive).
    2. Initial similarity of the predicted mesh onto the GT: from ``init_landmarks`` = (pred
       (K, 3), gt (K, 3)) corresponding points (K >= 3) when given; else centroids and RMS radii
       matched with rotation identity (so the poses must roughly agree), tried with the scale
       times each of MICC_INIT_SCALE_FACTORS (the RMS match underestimates the scale when the
       prediction covers more than the crop), each refined by a short ICP, the lowest error
       kept. With ``icp=False``: the landmark similarity when given, else the identity.
    3. ``icp``: :func:`icp_similarity` of the predicted vertices referenced by ``pred_faces`` to
       the cropped GT points (each GT point paired with its nearest predicted vertex); with
       ``icp_surface``, then refined with closest surface points as partners (slower; point-to-
       point ICP slides along a surface only linearly fast, so it stops at ``icp_iterations``).
    4. Signed point-to-plane distance of every cropped GT point to the aligned predicted surface
       (:func:`point_to_surface`), RMSE times ``units_to_mm``.

    Distances are measured in the GT frame, so the GT's units fix the millimetres; the predicted
    mesh may be in any scale. GT points whose closest point lies on the predicted mesh's border
    get the point-to-plane component of that border triangle.

    Returns:
      dict: rmse_mm (float), n_points (GT points kept), transform ((s, R, t) mapping the
      predicted mesh into the GT frame), distances_mm ((n_points,) signed), icp_history.
    """
    pred_vertices = np.asarray(pred_vertices, np.float64).reshape(-1, 3)
    pred_faces = np.asarray(pred_faces, np.int64).reshape(-1, 3)
    gt_points = np.asarray(gt_points, np.float64).reshape(-1, 3)
    keep = crop_radius(gt_points, gt_nose_tip, radius_mm / units_to_mm)
    gt = gt_points[keep]
    if len(gt) < 3:
        raise ValueError(f"only {len(gt)} ground-truth points within {radius_mm} mm of the nose "
                         "tip; check units_to_mm and the nose tip")
    used = pred_vertices[np.unique(pred_faces)]   # vertices no face uses never pair up
    if init_landmarks is not None:
        lm_pred, lm_gt = init_landmarks
        sim = similarity_transform(lm_pred, lm_gt)
    elif icp:
        sim = _best_scale_start(used, gt, icp_trim)
    else:
        sim = (1.0, np.eye(3), np.zeros(3))
    history = np.zeros(0)
    if icp:
        s, r, t, history = icp_similarity(used, gt, init=sim, iterations=icp_iterations,
                                          trim=icp_trim)
        sim = (s, r, t)
        if icp_surface:                           # refine on the surface (faces index all)
            s, r, t, h2 = icp_similarity(pred_vertices, gt, init=sim, iterations=icp_iterations,
                                         trim=icp_trim, src_faces=pred_faces)
            sim = (s, r, t)
            history = np.concatenate([history, h2])
    aligned = apply_similarity(pred_vertices, *sim)
    d, _, _ = point_to_surface(gt, aligned, pred_faces)
    d_mm = d * units_to_mm
    return {"rmse_mm": float(np.sqrt(np.mean(d_mm ** 2))), "n_points": int(len(gt)),
            "transform": sim, "distances_mm": d_mm, "icp_history": history}


# --------------------------------------------------------------------------- NoW
def now_errors(pred_vertices, pred_faces, pred_landmarks7, gt_points, gt_landmarks7,
               units_to_mm: float = 100.0) -> Dict[str, object]:
    """NoW protocol (docs/design.md §12): similarity alignment on the 7 landmarks, scan-to-mesh
    distances.

    The predicted mesh is mapped into the scan's frame by the least-squares similarity (rotation,
    translation, isotropic scale) of ``pred_landmarks7`` onto ``gt_landmarks7`` (7, 3), in the
    order of :data:`NOW_LANDMARKS_68`; then every GT scan point's unsigned distance to the
    aligned predicted surface, times ``units_to_mm``.

    Returns:
      dict: median_mm, mean_mm, std_mm (floats), distances_mm (N,), transform (s, R, t).
    """
    pred_landmarks7 = np.asarray(pred_landmarks7, np.float64)
    gt_landmarks7 = np.asarray(gt_landmarks7, np.float64)
    if pred_landmarks7.shape != (7, 3) or gt_landmarks7.shape != (7, 3):
        raise ValueError("now_errors expects (7, 3) landmarks, got "
                         f"{pred_landmarks7.shape} and {gt_landmarks7.shape}")
    sim = similarity_transform(pred_landmarks7, gt_landmarks7)
    aligned = apply_similarity(np.asarray(pred_vertices, np.float64).reshape(-1, 3), *sim)
    d, _, _ = point_to_surface(gt_points, aligned, pred_faces, unsigned=True)
    d_mm = d * units_to_mm
    return {"median_mm": float(np.median(d_mm)), "mean_mm": float(np.mean(d_mm)),
            "std_mm": float(np.std(d_mm)), "distances_mm": d_mm, "transform": sim}


# --------------------------------------------------------------------------- landmarks
def landmark_nme(pred, gt):
    """Mean landmark error normalised by the inter-ocular distance.

    ``mean_i |pred_i - gt_i| / |gt_36 - gt_45|`` (outer eye corners, 0-based iBUG 68 indices,
    taken from the ground truth). pred, gt: (68, D) -> float, or (B, 68, D) -> (B,).
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim not in (2, 3) or pred.shape[-2] != 68:
        raise ValueError(f"expected (68, D) or (B, 68, D) arrays of one shape, got "
                         f"{pred.shape} and {gt.shape}")
    a, b = OUTER_EYE_CORNERS_68
    iod = np.linalg.norm(gt[..., a, :] - gt[..., b, :], axis=-1)
    nme = np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) / iod
    return float(nme) if pred.ndim == 2 else nme


def cumulative_error_curve(errors, thresholds) -> np.ndarray:
    """Fraction of ``errors`` <= each threshold (for cumulative error distribution plots)."""
    errors = np.sort(np.asarray(errors, np.float64).ravel())
    thresholds = np.asarray(thresholds, np.float64)
    if len(errors) == 0:
        return np.zeros(thresholds.shape)
    return np.searchsorted(errors, thresholds, side="right") / len(errors)
