"""Fetch MediaPipe's face networks (mesh, detector) into the cache, ahead of the first use.

  facerecon-fetch-mediapipe [--force]

The photo pipeline runs MediaPipe's ``face_landmark.tflite`` (landmarks,
`facerecon_jax.photo.face_mesh`) and ``face_detection_short_range.tflite`` (faces dlib misses,
`facerecon_jax.photo.blazeface`), Apache 2.0, with our own JAX code. The files ship in the
mediapipe 0.10.21 wheel; this reads them out of that wheel (``pip download
mediapipe==0.10.21 --no-deps``, the package registry only) into
``$FACERECON_CACHE/mediapipe-0.10.21/``. Reconstruction does the same by itself the first time
it needs them; an installed mediapipe <= 0.10.21 is used as it is.
"""
from absl import flags

from facerecon_jax.io import cli

_FORCE = flags.DEFINE_bool("force", False, "Fetch again even when the cache has the file.")

TOOL = cli.Tool("fetch_mediapipe", __doc__)


def main(argv):
    del argv
    from facerecon_jax.photo import mediapipe_files
    for path in mediapipe_files.fetch(force=_FORCE.value):
        print(path)
    return 0


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
