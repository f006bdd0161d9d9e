"""Turn photos (or synthetic faces) into training shards for R-Net.

  python -m launch.prepare_data --input photos/ --input more.jpg --output_dir data/train
  python -m launch.prepare_data --synthetic 20000 --condition train --seed 0 --output_dir data/syn

Photos: every image in the folders / files / videos given (Deep3DFaceRecon's layout with
``detections/<name>.txt`` beside the images is used as the landmarks), faces found and aligned
as `facerecon-reconstruct` does (68 landmarks, 224 x 224 crop, naive-Bayes skin attention,
trans_params).  Synthetic: `--synthetic N` rendered faces with ground-truth coefficients instead
(facerecon_jax.training.synthetic).  Output: ``shard-XXXXX-of-YYYYY.npz`` files and ``index.json``
(facerecon_jax.training.data).  Unreadable files and photos without a face are reported, listed
under "skipped" in index.json with the reason, and the run goes on; the exit status is 0 when
anything was written, 1 when nothing could be.
"""

from absl import flags

from facerecon_jax.io import cli

_INPUT = flags.DEFINE_multi_string("input", None, "Image files, folders or videos (repeatable).")
_OUT = flags.DEFINE_string("output_dir", None, "Folder for the shards and index.json.")
_SHARD_SIZE = flags.DEFINE_integer("shard_size", 1000, "Examples per shard (write at least one "
                                   "shard per host that will read the data).")
_FACES = flags.DEFINE_enum("faces", "largest", ["largest", "all"],
                           "Several faces in a photo: the largest, or all of them.")
_VIDEO_EVERY = flags.DEFINE_integer("video_every", 10, "Use every n-th frame of videos.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "At most this many frames per video.")
_SYNTHETIC = flags.DEFINE_integer("synthetic", 0, "Write this many synthetic faces instead of "
                                  "photos (with ground-truth coefficients).")
_CONDITION = flags.DEFINE_enum("condition", "train",
                               ["cooperative", "indoor", "outdoor", "train"],
                               "Synthetic capture condition ('train' mixes the three).")
_SEED = flags.DEFINE_integer("seed", 0, "Synthetic data seed.")
_SIZE = flags.DEFINE_integer("size", 224, "Synthetic image size.")
_LIGHT = flags.DEFINE_enum("light", "mono", ["mono", "rgb"],
                           "Coefficient layout of the synthetic ground truth (light mode).")
_MODEL = flags.DEFINE_string("model", "default",
                             "Face model: 'default' (ICT), a facerecon .npz, or BFM files.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace shards already in --output_dir.")
flags.mark_flag_as_required("output_dir")

TOOL = cli.Tool("facerecon-prepare-data", __doc__)


def main(argv):
    del argv
    from facerecon_jax.models.model_loading import load_face_model
    from facerecon_jax.pipeline import photo_shards, reconstruct

    if not _SYNTHETIC.value and not _INPUT.value:
        raise cli.UsageError("give --input (photos) or --synthetic N")
    reconstruct.check_inputs(_INPUT.value or [])
    out_dir = cli.output_dir(_OUT.value)
    try:
        n = photo_shards.prepare_data(
            out_dir, load_face_model(_MODEL.value), inputs=_INPUT.value or (),
            synthetic=_SYNTHETIC.value, condition=_CONDITION.value, seed=_SEED.value,
            size=_SIZE.value, light=_LIGHT.value, shard_size=_SHARD_SIZE.value,
            faces=_FACES.value, video_every=_VIDEO_EVERY.value, max_frames=_MAX_FRAMES.value,
            overwrite=_OVERWRITE.value)
    except FileExistsError as e:
        raise cli.UsageError(f"{e} (--overwrite)") from e
    print(f"wrote {n} examples to {out_dir} ({out_dir / 'index.json'})")
    return 0 if n > 0 else 1


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
