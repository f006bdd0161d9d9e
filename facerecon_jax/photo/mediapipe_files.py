"""MediaPipe's network files (Apache 2.0): where they are, and fetching them once.

The photo pipeline runs two of MediaPipe's small networks with our own JAX code
(`tflite_graph`): the face mesh (`face_mesh`, ``face_landmark.tflite``) and the short-range
BlazeFace detector (`blazeface`, ``face_detection_short_range.tflite``). The files ship inside
the ``mediapipe`` wheels up to 0.10.21 (later wheels download their models at run time). Those
wheels pin numpy < 2 and protobuf < 5, so mediapipe is not a dependency: a file is taken from an
installed ``mediapipe`` if there is one, else from the cache
(``$FACERECON_CACHE/mediapipe-0.10.21/``), which :func:`fetch` fills from the package registry
(``pip download mediapipe==0.10.21 --no-deps``, the files read out of the wheel; no other
network) the first time one is needed, or ``facerecon-fetch-face-mesh`` ahead of time.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from typing import Optional

from facerecon_jax.io import assets

MEDIAPIPE_VERSION = "0.10.21"
FACE_LANDMARK = "mediapipe/modules/face_landmark/face_landmark.tflite"
FACE_DETECTOR = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
MEMBERS = (FACE_LANDMARK, FACE_DETECTOR)


class MediaPipeFileError(RuntimeError):
    """A MediaPipe network file is missing and could not be fetched, or is not the network."""


def _installed(member: str) -> Optional[pathlib.Path]:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]).parent / member
    return path if path.is_file() else None


def cached_file(member: str) -> pathlib.Path:
    """Where :func:`fetch` keeps one of `MEMBERS`."""
    return assets.cache_dir() / f"mediapipe-{MEDIAPIPE_VERSION}" / pathlib.Path(member).name


def fetch(force: bool = False) -> list:
    """Every one of `MEMBERS` in the cache, fetched from the package registry when one is
    absent: ``pip download mediapipe==0.10.21 --no-deps`` (one wheel, any platform's: the files
    are the same), the files read out of it and written atomically. Raises MediaPipeFileError
    with what to do when pip cannot get the wheel."""
    dests = [cached_file(m) for m in MEMBERS]
    if all(d.is_file() for d in dests) and not force:
        return dests
    folder = dests[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_VERSION}",
               "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
               "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "-d", tmp, "-q"]
        print(f"fetching MediaPipe's face networks from the mediapipe {MEDIAPIPE_VERSION} "
              f"wheel (package registry; once, into {folder})", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(pathlib.Path(tmp).glob("mediapipe-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise MediaPipeFileError(
                f"could not fetch MediaPipe's face networks: `{' '.join(cmd[2:])}` failed "
                f"({(proc.stderr or proc.stdout).strip()[-400:]}).\n  The photo pipeline needs "
                f"{', '.join(MEMBERS)} from the mediapipe {MEDIAPIPE_VERSION} wheel: put those "
                f"files in {folder} (or install mediapipe<={MEDIAPIPE_VERSION}), or use dlib's "
                "landmarks alone (--config.landmarks=dlib).")
        with zipfile.ZipFile(wheels[0]) as zf:
            for member, dest in zip(MEMBERS, dests):
                part = dest.with_name(dest.name + f".part{os.getpid()}")
                part.write_bytes(zf.read(member))
                os.replace(part, dest)
    return dests


def network_file(member: str) -> pathlib.Path:
    """One of `MEMBERS`: an installed mediapipe's, else the cache's (fetched if absent)."""
    if member not in MEMBERS:
        raise ValueError(f"unknown MediaPipe file {member!r}; known: {MEMBERS}")
    return _installed(member) or fetch()[MEMBERS.index(member)]
