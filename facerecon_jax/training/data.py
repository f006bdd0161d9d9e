"""Training data: the shard format, its writer and reader, augmentation and device prefetch.

Shard format (one folder):
  ``shard-00000-of-00012.npz`` ... uncompressed ``.npz`` files, each with
    image         (N, S, S, 3) uint8   aligned crops (S = 224 for photos)
    landmarks     (N, 68, 2)  float32  iBUG-68, 0-based, crop pixels, x right, y down, pixel
                                       centres at integer coordinates
    attention     (N, S, S)   uint8    skin attention A quantised: round(255 A)
    trans_params  (N, 5)      float32  Deep3DFaceRecon's (w0, h0, scale, tx, ty), ty y up
    name          (N,)        str
    coeffs        (N, D)      float32  optional: ground-truth coefficients (synthetic data)
    person        (N,)        int64    optional: who is pictured (several images of a person)
  ``index.json``: format, version, shards (file, count), num_examples, image_size, source,
  landmark convention, has_coeffs, has_person, skipped inputs with reasons, and free metadata.
Every file is written to a temporary name and renamed (atomic); ``index.json`` is written last,
so a folder without it is an interrupted run.

Reading (:class:`Dataset`): host ``p`` of ``P`` reads shards ``i`` with ``i % P == p``.  The
example stream of a host is a pure function of ``(seed, step)``: epoch ``e`` visits the host's
examples in an order drawn from ``(seed, e, process_index)`` (shards shuffled, then examples
shuffled within windows of ``shuffle_shards`` consecutive shards, so at most that many shards are
in memory; a window at least as large as the host's shard count gives a uniform permutation), and
example ``j`` of batch ``step`` is augmented with a generator seeded from
``(seed, process_index, step, j)``.  ``batches(..., start_step=k)`` therefore yields exactly
the batches an uninterrupted run would have seen from step k: that is how training resumes its
data position.  Hosts can hold different numbers of examples (their epochs then end at
different steps); training counts steps, not epochs.

Several images per person (the paper's setting; ``views_per_person`` k > 1, shards with
``person``): within each shuffle window the people are shuffled and each contributes k of its
images (drawn in a shuffled order; people with fewer than k images in the window sit the epoch
out), so a batch of B holds B / k people, each person's k images next to each other.

Augmentation (host side, numpy + OpenCV): one affine warp per example (shift +-10 px, scale
0.9-1.1, rotation +-10 deg about the crop centre, sizes scaled with S / 224), applied to the
image (bilinear, black outside), the attention (bilinear) and the landmarks alike, and a
horizontal flip (probability 0.5) with the 68-point mirror permutation :data:`FLIP_PERMUTATION`
(the subject's left and right landmarks swap names).  dm-pix's warps work on device arrays; the
host keeps the accelerators free for the train step and moves landmarks with the same matrix.

Ground-truth coefficients and augmentation: shift, scale and in-plane rotation change the pose
(angles, translation) the coefficients describe but not the face: identity, expression and
texture stay true.  A flip mirrors the face: the mirrored face is in general not the one the
identity / expression / texture coefficients give (blendshapes swap sides, identity modes are not
symmetric), so nothing of the vector stays true as stored.  Batches with coefficients therefore
carry ``coeffs`` unchanged plus three flags: ``coeffs_valid`` (1: the image was not moved, the
whole vector is the truth), ``shape_valid`` (1: not flipped; id / exp / tex still hold) and
``flip_only`` (1: flipped and not otherwise moved: the whole vector of the face's mirror image,
`geometry.mirror_image.mirror_coefficients` of ``coeffs``, is the truth; the supervised term of
training reads flipped pictures so, `training.train.Supervision`).  The ranges are
`AugmentConfig`'s (a training config's ``data.augment_*``; flips alone: shift, rotation 0 and
scale (1, 1)).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import pathlib
import queue
import re
import threading
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from facerecon_jax.io import atomic_file

FORMAT = "facerecon-shards"
VERSION = 1
LANDMARK_CONVENTION = ("iBUG-68, 0-based, crop pixels, x right, y down, pixel centres at integer "
                       "coordinates")
REQUIRED = ("image", "landmarks", "attention", "trans_params", "name")
_SHARD_RE = re.compile(r"^shard-(\d{5})(-of-\d{5})?\.npz$")


def _mirror_pairs():
    pairs = [(i, 16 - i) for i in range(8)]                         # jaw
    pairs += [(17 + k, 26 - k) for k in range(5)]                   # brows
    pairs += [(31, 35), (32, 34)]                                   # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]   # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]     # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]                         # inner lips
    perm = np.arange(68)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


FLIP_PERMUTATION = _mirror_pairs()
"""iBUG-68 mirror permutation (0-based): after flipping an image, landmark ``i`` of the flipped
face is the flipped point ``FLIP_PERMUTATION[i]`` of the original.  Self-mirrored: 8 (chin),
27-30 (nose bridge), 33 (nose bottom), 51, 57, 62, 66 (lip middles).  An involution."""


def flip_landmarks(landmarks, width: int) -> np.ndarray:
    """Landmarks (..., 68, 2) of an image of `width` pixels flipped left-right: x -> W - 1 - x,
    then renamed with :data:`FLIP_PERMUTATION`."""
    lm = np.array(landmarks, dtype=np.float64, copy=True)
    lm[..., 0] = width - 1 - lm[..., 0]
    return lm[..., FLIP_PERMUTATION, :]


# -- writing ------------------------------------------------------------------------------------

def _atomic_write(path: pathlib.Path, write) -> None:
    def writer(tmp):
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    atomic_file.write(path, writer)       # mode from the umask: other hosts read the shards


def _quantise_attention(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.round(np.asarray(a, np.float32) * 255.0), 0, 255).astype(np.uint8)


class ShardWriter:
    """Write examples into shards of `shard_size` in `out_dir` (see the module docstring).

    ``add(example)`` takes a dict with image (S, S, 3) uint8, landmarks (68, 2), attention
    (S, S) float in [0, 1] (or uint8 already quantised), trans_params (5,), name, and optionally
    coeffs (D,); every example must have the same keys and shapes.  ``skip(source, reason)``
    records an input that could not be used.  ``close()`` renames the shards to their final
    ``-of-`` names and writes ``index.json``; it returns the index.  An existing ``index.json`` in
    `out_dir` is an error unless ``overwrite`` (then the old shard files and index are removed).
    """

    def __init__(self, out_dir, shard_size: int = 1000, *, source: str = "photos",
                 metadata: Optional[dict] = None, overwrite: bool = False):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.out_dir = pathlib.Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        index = self.out_dir / "index.json"
        old = [p for p in self.out_dir.iterdir() if _SHARD_RE.match(p.name)]
        if index.exists() or old:
            if not overwrite:
                raise FileExistsError(f"{self.out_dir} already holds shards; choose another "
                                      "folder or overwrite")
            for p in old:
                p.unlink()
            if index.exists():
                index.unlink()
        self.shard_size = int(shard_size)
        self.source = source
        self.metadata = dict(metadata or {})
        self._buf: Dict[str, list] = collections.defaultdict(list)
        self._keys: Optional[tuple] = None
        self._shapes: Dict[str, tuple] = {}
        self._counts: List[int] = []
        self._skipped: List[dict] = []
        self._closed = False
        self.num_examples = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._closed and exc[0] is None:
            self.close()

    def _check(self, ex: dict) -> dict:
        missing = [k for k in REQUIRED if k not in ex]
        if missing:
            raise ValueError(f"example lacks {missing}")
        row = {
            "image": np.asarray(ex["image"]),
            "landmarks": np.asarray(ex["landmarks"], np.float32),
            "attention": _quantise_attention(ex["attention"]),
            "trans_params": np.asarray(ex["trans_params"], np.float32).reshape(5),
            "name": str(ex["name"]),
        }
        if ex.get("coeffs") is not None:
            row["coeffs"] = np.asarray(ex["coeffs"], np.float32).reshape(-1)
        if ex.get("person") is not None:
            row["person"] = np.int64(ex["person"])
        img = row["image"]
        if (img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3
                or img.shape[0] != img.shape[1]):
            raise ValueError(f"image must be (S, S, 3) uint8, got {img.shape} {img.dtype}")
        if row["landmarks"].shape != (68, 2):
            raise ValueError(f"landmarks must be (68, 2), got {row['landmarks'].shape}")
        if row["attention"].shape != img.shape[:2]:
            raise ValueError(f"attention must be {img.shape[:2]}, got {row['attention'].shape}")
        keys = tuple(sorted(row))
        shapes = {k: np.shape(v) for k, v in row.items() if k != "name"}
        if self._keys is None:
            self._keys, self._shapes = keys, shapes
        elif keys != self._keys or shapes != self._shapes:
            raise ValueError(f"example {row['name']!r} has keys/shapes {keys} {shapes}, the "
                             f"shards hold {self._keys} {self._shapes}")
        return row

    def add(self, example: dict) -> None:
        if self._closed:
            raise RuntimeError("ShardWriter is closed")
        row = self._check(example)
        for k, v in row.items():
            self._buf[k].append(v)
        self.num_examples += 1
        if len(self._buf["name"]) >= self.shard_size:
            self._flush()

    def add_batch(self, arrays: dict) -> None:
        """Add examples given as arrays with a leading example axis (same keys as add)."""
        n = len(arrays["name"])
        for i in range(n):
            self.add({k: v[i] for k, v in arrays.items() if v is not None})

    def skip(self, source: str, reason: str) -> None:
        self._skipped.append({"source": str(source), "reason": str(reason)})

    @property
    def skipped(self) -> List[dict]:
        return list(self._skipped)

    def _flush(self) -> None:
        if not self._buf.get("name"):
            return
        arrays = {k: np.stack(v) if k != "name" else np.array(v) for k, v in self._buf.items()}
        path = self.out_dir / f"shard-{len(self._counts):05d}.npz"
        _atomic_write(path, lambda f: np.savez(f, **arrays))
        self._counts.append(len(arrays["name"]))
        self._buf = collections.defaultdict(list)

    def close(self, extra: Optional[dict] = None) -> dict:
        """Write the last shard, give every shard its final name, write index.json."""
        if self._closed:
            raise RuntimeError("ShardWriter is already closed")
        self._flush()
        total = len(self._counts)
        files = []
        for i in range(total):
            name = f"shard-{i:05d}-of-{total:05d}.npz"
            os.replace(self.out_dir / f"shard-{i:05d}.npz", self.out_dir / name)
            files.append(name)
        size = int(self._shapes["image"][0]) if self._shapes else None
        index = {
            "format": FORMAT, "version": VERSION, "source": self.source,
            "num_examples": int(sum(self._counts)),
            "shards": [{"file": f, "count": int(c)} for f, c in zip(files, self._counts)],
            "image_size": size,
            "has_coeffs": bool(self._keys and "coeffs" in self._keys),
            "has_person": bool(self._keys and "person" in self._keys),
            "coeff_dim": int(self._shapes["coeffs"][0]) if "coeffs" in self._shapes else None,
            "landmark_convention": LANDMARK_CONVENTION,
            "attention": "uint8, round(255 * A)",
            "trans_params": "Deep3DFaceRecon (w0, h0, scale, tx, ty), ty y up",
            "skipped": self._skipped,
            **self.metadata, **(extra or {}),
        }
        _atomic_write(self.out_dir / "index.json",
                      lambda f: f.write(json.dumps(index, indent=2).encode()))
        self._closed = True
        return index


# -- augmentation -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges at 224 pixels (shift scales with the image size)."""
    shift: float = 10.0               # pixels, uniform in +-shift per axis
    scale: tuple = (0.9, 1.1)
    rotation: float = 10.0            # degrees, uniform in +-rotation
    flip: float = 0.5                 # probability of a horizontal flip


def augment_matrix(rng: np.random.Generator, size: int, cfg: AugmentConfig = AugmentConfig()):
    """(2x3 affine map from stored crop pixels to augmented pixels, flipped?) for one example:
    flip (x -> S - 1 - x), then rotation and scale about the centre, then shift."""
    c = (size - 1) / 2.0
    flip = bool(rng.uniform() < cfg.flip)
    ang = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
    s = rng.uniform(*cfg.scale)
    t = rng.uniform(-cfg.shift, cfg.shift, 2) * size / 224.0
    f = np.array([[-1.0 if flip else 1.0, 0.0, (size - 1.0) if flip else 0.0],
                  [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ca, sa = math.cos(ang) * s, math.sin(ang) * s
    # rotation by +ang in image coordinates (y down: clockwise on screen) about the centre
    r = np.array([[ca, -sa, c - ca * c + sa * c + t[0]],
                  [sa, ca, c - sa * c - ca * c + t[1]], [0.0, 0.0, 1.0]])
    return (r @ f)[:2], flip


def unmoved_flip(size: int) -> np.ndarray:
    """The 2 x 3 matrix of a flip alone (x -> S - 1 - x), `augment_matrix`'s convention."""
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])


def augment_config_from(data_config) -> AugmentConfig:
    """A training config's ``data`` section -> `AugmentConfig` (``augment_shift``,
    ``augment_scale``, ``augment_rotation``, ``augment_flip``; the defaults where absent)."""
    d = AugmentConfig()
    get = data_config.get
    scale = tuple(float(v) for v in get("augment_scale", d.scale))
    cfg = AugmentConfig(shift=float(get("augment_shift", d.shift)), scale=scale,
                        rotation=float(get("augment_rotation", d.rotation)),
                        flip=float(get("augment_flip", d.flip)))
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] or cfg.shift < 0 or cfg.rotation < 0 \
            or not 0 <= cfg.flip <= 1:
        raise ValueError(f"bad augmentation ranges {cfg}: shift and rotation >= 0, scale "
                         f"(low, high) with 0 < low <= high, flip a probability")
    return cfg


def apply_augmentation(matrix, flip: bool, image, attention, landmarks):
    """Warp image (S, S, C) and attention (S, S) with the 2x3 `matrix` (bilinear, black outside)
    and map the landmarks with it; renamed with the mirror permutation when `flip`."""
    import cv2  # noqa: PLC0415
    size = image.shape[0]
    m = np.asarray(matrix, np.float64)
    img = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    att = cv2.warpAffine(attention, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    lm = np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    if flip:
        lm = lm[FLIP_PERMUTATION]
    return img, att, lm


# -- reading ------------------------------------------------------------------------------------

def host_shards(num_shards: int, process_index: int, process_count: int) -> List[int]:
    """Shards of one host: i with i % process_count == process_index (ValueError when there are
    fewer shards than hosts: every host must get data)."""
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"bad host {process_index} of {process_count}")
    if num_shards < process_count:
        raise ValueError(f"{num_shards} shards cannot feed {process_count} hosts: write at least "
                         "one shard per host (a smaller --shard_size)")
    return [i for i in range(num_shards) if i % process_count == process_index]


class Dataset:
    """A folder of shards, read by one host (see the module docstring).

    ``process_index`` / ``process_count`` default to JAX's; ``shuffle_shards``: shards mixed
    together in one shuffle window (and the shard cache size)."""

    def __init__(self, directory, process_index: Optional[int] = None,
                 process_count: Optional[int] = None, shuffle_shards: int = 8,
                 augment_config: AugmentConfig = AugmentConfig()):
        self.directory = pathlib.Path(directory)
        path = self.directory / "index.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: not a finished shard folder (write one "
                                    "with facerecon-prepare-data)")
        self.index = json.loads(path.read_text())
        if self.index.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} index")
        if process_index is None or process_count is None:
            import jax  # noqa: PLC0415
            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        self.process_index, self.process_count = int(process_index), int(process_count)
        self.shards = self.index["shards"]
        self.shuffle_shards = max(1, int(shuffle_shards))
        self.augment_config = augment_config
        self.my_shards = self.host_shards(self.process_index, self.process_count)
        counts = np.array([self.shards[i]["count"] for i in self.my_shards], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._cache: "collections.OrderedDict[int, dict]" = collections.OrderedDict()
        self._orders: Dict[tuple, np.ndarray] = {}

    # sizes
    @property
    def num_examples(self) -> int:
        """Examples in all shards (every host)."""
        return int(self.index["num_examples"])

    @property
    def num_host_examples(self) -> int:
        return int(self._offsets[-1])

    @property
    def image_size(self) -> int:
        return int(self.index["image_size"])

    @property
    def has_coeffs(self) -> bool:
        return bool(self.index.get("has_coeffs"))

    @property
    def has_person(self) -> bool:
        return bool(self.index.get("has_person"))

    def persons(self) -> np.ndarray:
        """(num_host_examples,) who each host-local example pictures (only that column of each
        shard is read)."""
        if not self.has_person:
            raise ValueError(f"{self.directory}: the shards do not say who is pictured (no "
                             f"'person'); several images per person need it (synthetic data: "
                             f"data.views_per_person)")
        if not hasattr(self, "_persons"):
            cols = []
            for k in self.my_shards:
                with np.load(self.directory / self.shards[k]["file"], allow_pickle=False) as z:
                    cols.append(np.asarray(z["person"], np.int64))
            self._persons = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        return self._persons

    def host_shards(self, process_index: int, process_count: int) -> List[int]:
        """Shard numbers read by host `process_index` of `process_count`."""
        return host_shards(len(self.shards), process_index, process_count)

    def steps_per_epoch(self, batch_size: int, drop_remainder: bool = True,
                        views_per_person: int = 1) -> int:
        n = (self.num_host_examples if views_per_person <= 1
             else len(self.epoch_order(0, 0, views_per_person)))
        return n // batch_size if drop_remainder else -(-n // batch_size)

    # examples
    def _shard(self, shard: int) -> dict:
        if shard in self._cache:
            self._cache.move_to_end(shard)
            return self._cache[shard]
        with np.load(self.directory / self.shards[shard]["file"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        self._cache[shard] = arrays
        while len(self._cache) > self.shuffle_shards + 1:
            self._cache.popitem(last=False)
        return arrays

    def example(self, i: int) -> dict:
        """Host-local example `i` (0 .. num_host_examples - 1), as stored."""
        k = int(np.searchsorted(self._offsets, i, side="right") - 1)
        arrays = self._shard(self.my_shards[k])
        row = i - int(self._offsets[k])
        return {key: v[row] for key, v in arrays.items()}

    def epoch_order(self, seed: int, epoch: int, views_per_person: int = 1) -> np.ndarray:
        """Host-local example ids in the order epoch `epoch` visits them, from
        (seed, epoch, process_index) only; with `views_per_person` k > 1, k images of each
        person in turn (module docstring)."""
        key = (int(seed), int(epoch), int(views_per_person))
        if key not in self._orders:
            rng = np.random.default_rng([int(seed), int(epoch), self.process_index, 0xDA7A])
            shard_order = rng.permutation(len(self.my_shards))
            persons = self.persons() if views_per_person > 1 else None
            parts = []
            for w in range(0, len(shard_order), self.shuffle_shards):
                ids = np.concatenate([np.arange(self._offsets[k], self._offsets[k + 1])
                                      for k in shard_order[w:w + self.shuffle_shards]])
                ids = rng.permutation(ids)
                if persons is not None:
                    ids = _people_first(ids, persons[ids], views_per_person)
                parts.append(ids)
            self._orders = {key: np.concatenate(parts) if parts else np.zeros(0, np.int64)}
        return self._orders[key]

    def batch_ids(self, batch_size: int, seed: int, step: int,
                  drop_remainder: bool = True, views_per_person: int = 1) -> np.ndarray:
        """Host-local example ids of batch `step` of the stream."""
        if batch_size % max(1, views_per_person):
            raise ValueError(f"batch size {batch_size} must be a multiple of views_per_person "
                             f"{views_per_person}")
        spe = self.steps_per_epoch(batch_size, drop_remainder, views_per_person)
        if spe == 0:
            raise ValueError(f"batch size {batch_size} exceeds the {self.num_host_examples} "
                             f"examples of host {self.process_index}")
        epoch, j = divmod(int(step), spe)
        order = self.epoch_order(seed, epoch, views_per_person)
        if views_per_person > 1:   # epochs may differ in length by whole people: wrap around
            return order[(j * batch_size + np.arange(batch_size)) % len(order)]
        return order[j * batch_size:(j + 1) * batch_size]

    def make_batch(self, ids: Sequence[int], seed: int, step: int,
                   augment: bool = True) -> Dict[str, np.ndarray]:
        """Batch of the given examples, augmented with generators seeded by (seed, host, step,
        position in the batch)."""
        images, atts, lms, coeffs, moved, flipped, mats = [], [], [], [], [], [], []
        flip_only = []
        for j, i in enumerate(ids):
            ex = self.example(int(i))
            img, att, lm = ex["image"], ex["attention"], ex["landmarks"]
            m, flip = np.eye(3)[:2], False
            if augment:
                rng = np.random.default_rng([int(seed), self.process_index, int(step), j, 0xA06])
                m, flip = augment_matrix(rng, img.shape[0], self.augment_config)
                img, att, lm = apply_augmentation(m, flip, img, att, lm)
            images.append(img)
            atts.append(att)
            lms.append(lm)
            mats.append(m)
            moved.append(not np.allclose(m, np.eye(3)[:2]))
            flipped.append(flip)
            flip_only.append(flip and np.allclose(m, unmoved_flip(img.shape[1])))
            if "coeffs" in ex:
                coeffs.append(ex["coeffs"])
        batch = {
            "image": np.stack(images).astype(np.float32) / 255.0,
            "landmarks": np.stack(lms).astype(np.float32),
            "attention": np.stack(atts).astype(np.float32) / 255.0,
            "augment_matrix": np.stack(mats).astype(np.float32),
            "mirrored": np.array(flipped, np.float32),
        }
        if coeffs:
            batch["coeffs"] = np.stack(coeffs).astype(np.float32)
            batch["coeffs_valid"] = 1.0 - np.array(moved, np.float32)
            batch["shape_valid"] = 1.0 - np.array(flipped, np.float32)
            batch["flip_only"] = np.array(flip_only, np.float32)
        return batch

    def batches(self, batch_size: int, seed: int = 0, start_step: int = 0, augment: bool = True,
                drop_remainder: bool = True, num_epochs: Optional[int] = None,
                views_per_person: int = 1) -> Iterator[Dict[str, np.ndarray]]:
        """Batches ``start_step, start_step + 1, ...`` of the host's stream (module docstring),
        dicts of float32 arrays: image (B, S, S, 3) in [0, 1], landmarks (B, 68, 2), attention
        (B, S, S) in [0, 1], augment_matrix (B, 2, 3) (stored crop pixels -> batch pixels),
        mirrored (B,) 1 for flipped images, and with ground truth coeffs (B, D), coeffs_valid
        (B,), shape_valid (B,).  Each epoch has
        ``steps_per_epoch`` batches (drop_remainder: the last partial batch of an epoch is
        dropped; else it is yielded smaller).  Endless unless num_epochs is given.
        `views_per_person` k: batches of B / k people x k images (module docstring)."""
        spe = self.steps_per_epoch(batch_size, drop_remainder, views_per_person)
        if spe == 0:
            raise ValueError(f"batch size {batch_size} exceeds the {self.num_host_examples} "
                             f"examples of host {self.process_index}")
        step = int(start_step)
        while num_epochs is None or step < num_epochs * spe:
            ids = self.batch_ids(batch_size, seed, step, drop_remainder, views_per_person)
            yield self.make_batch(ids, seed, step, augment)
            step += 1


def _people_first(ids: np.ndarray, persons: np.ndarray, k: int) -> np.ndarray:
    """ids (already shuffled) regrouped: the people (in the order they first appear) each with
    their first k ids; people with fewer than k are left out."""
    groups: Dict[int, list] = {}
    for i, p in zip(ids.tolist(), persons.tolist()):
        groups.setdefault(p, []).append(i)
    chosen = [g[:k] for g in groups.values() if len(g) >= k]
    return np.asarray([i for g in chosen for i in g], np.int64)


# -- device prefetch ----------------------------------------------------------------------------

def shard_for_devices(batch: dict, devices=None):
    """Put a batch onto local devices split along a new leading device axis:
    (B, ...) -> (n_devices, B / n_devices, ...), one slice per device (what pmap takes).
    Non-numeric leaves stay on the host, reshaped alike."""
    import jax  # noqa: PLC0415
    from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: PLC0415

    devices = list(devices) if devices is not None else jax.local_devices()
    n = len(devices)
    sharding = NamedSharding(Mesh(np.array(devices), ("devices",)), PartitionSpec("devices"))

    def put(x):
        x = np.asarray(x)
        if x.shape[0] % n:
            raise ValueError(f"batch of {x.shape[0]} does not split over {n} devices")
        x = x.reshape((n, x.shape[0] // n) + x.shape[1:])
        if x.dtype.kind in "biuf":
            return jax.device_put(x, sharding)
        return x
    return jax.tree_util.tree_map(put, batch)


def prefetch_to_device(iterator: Iterable, size: int = 2, devices=None) -> Iterator:
    """Iterate `iterator` in a background thread, keeping up to `size` batches already placed on
    the devices (:func:`shard_for_devices`).  Errors of the iterator are raised in the consumer;
    leaving the loop early (or closing the generator) stops the thread and waits for it, so no
    transfer is still running when the program exits (a daemon thread stopped inside one
    aborts the interpreter at exit)."""
    q: "queue.Queue" = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for batch in iterator:
                if not offer(("item", shard_for_devices(batch, devices))):
                    return
            offer(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            offer(("error", e))

    thread = threading.Thread(target=produce, name="prefetch_to_device", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "item":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join(timeout=60)
