"""Learn where the landmark detector's 68 points lie on the default face model.

  python -m launch.calibrate_landmarks --output facerecon_jax/fit/data/landmark_map_ict_mesh.json
  python -m launch.calibrate_landmarks --kind offsets \
      --output facerecon_jax/fit/data/landmark_offsets_ict_mesh.json

(`--landmarks dlib` with the `_dlib.json` names: dlib's own points, the files for
`--config.landmarks=dlib`.)

Renders calibration people (`benchmark_faces`, seeds apart from the evaluation's) with the yaw
spread over +-50 degrees, runs the photo pipeline's detector on every picture, and learns a
landmark embedding (`facerecon_jax.fit.landmark_embedding`, `landmark_calibration`). --kind
vertices (the fitting's landmark_map "learned"): one vertex per inner landmark, one per yaw bin
per contour landmark, pictures lit as indoors. --kind offsets (landmark_map "calibrated"): the
model's own landmark vertices and a 3D offset from each to where dlib puts its point, per yaw
bin on the contour, pictures of every condition. About 10 minutes on a 2-core CPU.
"""
from absl import flags

from facerecon_jax.io import cli

_OUT = flags.DEFINE_string("output", None, "Where to write the map (.json).")
_PEOPLE = flags.DEFINE_integer("n_people", 40, "Calibration people.")
_VIEWS = flags.DEFINE_integer("views", 12, "Pictures per person.")
_SEED = flags.DEFINE_integer("seed", 31337, "Calibration seed (the evaluation uses others).")
_BIN_DEG = flags.DEFINE_float("bin_degrees", 10.0, "Width of the contour's yaw bins.")
_LANDMARKS = flags.DEFINE_enum("landmarks", "mesh", ["mesh", "dlib"],
                                "The detector's landmark source (detection.FaceDetector).")
_KIND = flags.DEFINE_enum("kind", "vertices", ["vertices", "offsets"],
                          "What to learn: other vertices, or offsets from the model's own.")
flags.mark_flag_as_required("output")

TOOL = cli.Tool("calibrate_landmarks", __doc__)


def main(argv):
    del argv
    from facerecon_jax.eval import landmark_calibration
    learn = (landmark_calibration.calibrate_to_file if _KIND.value == "vertices"
             else landmark_calibration.calibrate_offsets_to_file)
    info = learn(_OUT.value, n_people=_PEOPLE.value, views=_VIEWS.value, seed=_SEED.value,
                 bin_degrees=_BIN_DEG.value, landmarks=_LANDMARKS.value)
    print(info["summary"])
    return 0


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
