"""One face per person from many images (the paper's multi-image reconstruction).

  facerecon-aggregate --input people/ --output_dir faces/                 # joint fit (photos)
  facerecon-aggregate --input people/ --mode per_person --output_dir faces/  # k-means per person
  facerecon-aggregate --input people/ --mode paper --output_dir faces/   # identities unknown
  facerecon-aggregate --input alice/ --input bob/ --mode mean ...        # baseline

Each input is a person's folder, or a folder of person folders. A person folder holds photos,
or the <name>_coeffs.npz files that facerecon-reconstruct writes (with its <name>_input.jpg).
Joint mode (the default when the folders hold photos) fits all photos of a person in one
optimisation: one identity and albedo per person, pose, expression and light per photo. The
other modes aggregate per-photo coefficients; photos are reconstructed first (into
<output_dir>/reconstruct/<person>/), coefficient files are used as they are. In paper mode
all vectors are pooled and clustered with K = --n_people (default: the number of person
folders), and the report says which image went to which cluster (and, when the folders name
people, how well the clusters match them: adjusted Rand index).

Per person: <person>.obj (identity mesh: neutral expression, frontal, albedo colours),
<person>_coeffs.npz, <person>.png (a frontal render), the person's texture (the members'
<name>_texture.png averaged with their <name>_texture_weight.png) with <person>_textured.obj/.mtl
and <person>.glb; report.json and index.html (the results page: each person in 3D, its images
and their cluster labels).
A coefficient file that cannot be read, or a photo with no face, is named and skipped, the rest
are aggregated; the exit status is the number of such files (0 when all were good).
"""
import pathlib

from absl import flags

from facerecon_jax.io import cli

_CONFIG = cli.define_config(
    "facerecon-aggregate", str(pathlib.Path(__file__).parent.parent / "configs" / "reconstruct.py"),
    "Fitting settings for photos (configs/reconstruct.py; override with --config.steps=200 etc).")
_INPUT = flags.DEFINE_multi_string("input", None, "Person folders, or a folder of them.")
_OUT = flags.DEFINE_string("output_dir", "faces", "Where to write the results.")
_MODE = flags.DEFINE_enum("mode", "auto", ["auto", "joint", "paper", "per_person", "mean",
                                          "median"],
                          "Aggregation mode; auto: joint when the folders hold photos, else "
                          "per_person.")
_FIELDS = flags.DEFINE_enum("fields", "identity", ["identity", "all", "shape"],
                            "Which parts of the vector are clustered: identity+texture, all, "
                            "or identity only.")
_N_PEOPLE = flags.DEFINE_integer("n_people", None, "Paper mode: K (default: person folders).")
_K = flags.DEFINE_integer("k", None, "Per-person mode: clusters inside a person "
                                     "(default 2 with 4+ images, else 1).")
_N_INIT = flags.DEFINE_integer("n_init", 10, "k-means restarts (vmapped).")
_SEED = flags.DEFINE_integer("seed", 0, "k-means key.")
_KEEP_EXP = flags.DEFINE_bool("keep_expression", False,
                              "Keep the mean expression and pose instead of neutral.")
_MODEL = flags.DEFINE_string("model", "default", "Face model the coefficients belong to.")
_TEXTURE_SIZE = flags.DEFINE_integer("texture_size", 1024,
                                     "Texture map size of faces fitted from photos.")
flags.mark_flag_as_required("input")

TOOL = cli.Tool("facerecon-aggregate", __doc__, {
    "steps": "steps of the hybrid-loss stage when fitting photos",
    "steps_landmark": "steps of the landmark-only stage before it",
    "batch_size": "photos fitted together",
    "light": "rgb (27 SH coefficients) or mono (9, the paper's)",
})


def main(argv):
    del argv
    from facerecon_jax.pipeline import aggregate_job
    return aggregate_job.run(
        _INPUT.value, _OUT.value, mode=_MODE.value, fields=_FIELDS.value,
        n_people=_N_PEOPLE.value, k=_K.value, n_init=_N_INIT.value, seed=_SEED.value,
        keep_expression=_KEEP_EXP.value, model_name=_MODEL.value, fit_config=_CONFIG.value,
        texture_size=_TEXTURE_SIZE.value)


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
