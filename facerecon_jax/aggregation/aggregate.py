"""Multi-image reconstruction: one face per person from many per-image coefficient vectors
(the paper's section 3.2).

Modes:
  paper       all images of M people, identities unknown: k-means with K = M over the vectors;
              each cluster is a person, its centroid that person's vector;
  per_person  images grouped by person: k-means inside the group, the centroid of the largest
              cluster is the robust aggregate (outlier images fall into small clusters);
  mean, median  baselines.
Which parts of the vector are clustered is a choice: identity and texture ("identity", the
default: what stays the same across a person's photos), or the whole vector ("all"). The
aggregate's other parts are the mean over the chosen images, and for the identity mesh the
expression and pose are set to neutral unless asked to keep them.
"""
from __future__ import annotations

import dataclasses
import pathlib
import zipfile
from typing import Dict, List, Optional, Sequence

import jax
import numpy as np

from facerecon_jax.geometry.coefficients import CoeffLayout, FIELDS
from facerecon_jax.aggregation.kmeans import kmeans, largest_cluster  # noqa: F401  (aggregate.kmeans)

FIELD_SETS = {"identity": ("id", "tex"), "all": FIELDS, "shape": ("id",)}
MODES = ("paper", "per_person", "mean", "median")


def columns(layout: CoeffLayout, fields: Sequence[str]) -> np.ndarray:
    sl = layout.slices()
    return np.concatenate([np.arange(sl[f].start, sl[f].stop) for f in fields])


def neutralise(x: np.ndarray, layout: CoeffLayout) -> np.ndarray:
    """Expression, rotation and translation to zero (the identity mesh); light kept."""
    x = np.array(x, np.float32, copy=True)
    sl = layout.slices()
    for f in ("exp", "angles", "trans"):
        x[..., sl[f]] = 0.0
    return x


@dataclasses.dataclass
class PersonResult:
    name: str
    vector: np.ndarray                 # (D,) aggregated coefficients
    members: List[str]                 # images used for the aggregate
    images: List[str]                  # all images of this person / cluster
    labels: Optional[List[int]] = None  # per-person mode: cluster of each image
    inertia: Optional[float] = None


def aggregate_person(names: Sequence[str], x: np.ndarray, layout: CoeffLayout, *,
                     mode: str = "per_person", fields: Sequence[str] = FIELD_SETS["identity"],
                     k: Optional[int] = None, key=None, n_init: int = 10,
                     keep_expression: bool = False, person: str = "person") -> PersonResult:
    """One person's images (J, D) -> one vector."""
    x = np.asarray(x, np.float32)
    names = list(names)
    cols = columns(layout, fields)
    if mode == "mean":
        v, members, labels, inertia = x.mean(0), names, None, None
    elif mode == "median":
        v, members, labels, inertia = np.median(x, axis=0), names, None, None
    elif mode == "per_person":
        if k is None:
            k = 2 if len(x) >= 4 else 1
        key = jax.random.PRNGKey(0) if key is None else key
        res = kmeans(x[:, cols], min(k, len(x)), key=key, n_init=n_init)
        labels = np.asarray(res.labels)
        chosen = int(largest_cluster(x[:, cols], res))
        member = labels == chosen
        v = x[member].mean(0)
        v[cols] = np.asarray(res.centroids)[chosen]
        members = [n for n, m in zip(names, member) if m]
        labels, inertia = labels.tolist(), float(res.inertia)
    else:
        raise ValueError(f"mode must be one of {MODES} for one person, got {mode!r}")
    v = np.asarray(v, np.float32)
    if not keep_expression:
        v = neutralise(v, layout)
    return PersonResult(person, v, members, names, labels, inertia)


def cluster_all(names: Sequence[str], x: np.ndarray, layout: CoeffLayout, n_people: int, *,
                fields: Sequence[str] = FIELD_SETS["identity"], key=None, n_init: int = 10,
                keep_expression: bool = False) -> tuple:
    """Paper mode: (list of PersonResult, labels (N,), inertia) for K = n_people clusters."""
    x = np.asarray(x, np.float32)
    cols = columns(layout, fields)
    key = jax.random.PRNGKey(0) if key is None else key
    res = kmeans(x[:, cols], int(n_people), key=key, n_init=n_init)
    labels = np.asarray(res.labels)
    people = []
    for c in range(n_people):
        member = labels == c
        if not member.any():
            continue
        v = x[member].mean(0)
        v[cols] = np.asarray(res.centroids)[c]
        if not keep_expression:
            v = neutralise(v, layout)
        imgs = [n for n, m in zip(names, member) if m]
        people.append(PersonResult(f"cluster{c:03d}", v.astype(np.float32), imgs, imgs))
    return people, labels, float(res.inertia)


class CoefficientFileError(ValueError):
    """A *_coeffs.npz that cannot be read or is not one reconstruct writes; names the file."""


def read_coefficients(path) -> Dict[str, np.ndarray]:
    """A <name>_coeffs.npz written by reconstruct: the split fields (and 'coeffs').
    :class:`CoefficientFileError` naming the file when it is unreadable or not one."""
    try:
        with np.load(path, allow_pickle=False) as d:
            missing = [f for f in FIELDS if f not in d.files]
            if missing:
                raise CoefficientFileError(f"{path}: not a coefficient file written by "
                                           f"facerecon-reconstruct (missing {missing})")
            return {k: d[k] for k in d.files}
    except CoefficientFileError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise CoefficientFileError(f"{path}: not a readable coefficient file ({type(e).__name__}"
                                   f": {e}); write it again with facerecon-reconstruct") from e


def layout_of(parts: Dict[str, np.ndarray]) -> CoeffLayout:
    return CoeffLayout(n_id=parts["id"].shape[-1], n_exp=parts["exp"].shape[-1],
                       n_tex=parts["tex"].shape[-1],
                       light="mono" if parts["gamma"].shape[-1] == 9 else "rgb")


def load_folder(folder, bad: Optional[list] = None) -> tuple:
    """(names, (J, D) vectors, layout) from the *_coeffs.npz files of a folder. With a list
    `bad`, a file that cannot be read (or has another layout than the first good one) is
    skipped and (path, reason) appended to it; without, it raises CoefficientFileError."""
    files = sorted(pathlib.Path(folder).glob("*_coeffs.npz"))
    names, vecs, layout = [], [], None
    for f in files:
        try:
            parts = read_coefficients(f)
            lay = layout_of(parts)
            if layout is not None and lay != layout:
                raise CoefficientFileError(
                    f"{f}: coefficient layout {lay} differs from {layout} of the other files "
                    "(different face model or light?)")
        except CoefficientFileError as e:
            if bad is None:
                raise
            bad.append((str(f), str(e)))
            continue
        layout = layout or lay
        names.append(f.name[: -len("_coeffs.npz")])
        vecs.append(layout.join({k: parts[k][None] for k in FIELDS})[0])
    if not names:
        return [], np.zeros((0, 0), np.float32), None
    return names, np.stack([np.asarray(v) for v in vecs]).astype(np.float32), layout
