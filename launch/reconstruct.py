"""Reconstruct 3D faces from photos, folders and videos.

  facerecon-reconstruct --input photo.jpg --input photos/ --input clip.mp4 --output_dir out/
  facerecon-reconstruct --checkpoint RUN --mode rnet --texture none --input photos/ ...  (R-Net)

Per face, in --output_dir: <name>.obj (lit vertex colours), <name>_albedo.obj, <name>_coeffs.npz
(split coefficients, alignment transform, landmarks), <name>_lm68.txt (68 fitted landmarks in the
original image's pixels, y down), <name>_overlay.png (crop | render | landmarks: detected green,
fitted red) and <name>_pasted.png (the render on the original photo); the textured face from the
photo: <name>_texture.png (--texture albedo|photo), <name>_texture_weight.png,
<name>_textured.obj/.mtl and <name>.glb; <name>_input.jpg; plus report.json and index.html (the
results page with a 3D viewer; open it in a browser).
A file that cannot be read or has no face is reported and skipped; the exit status is the number
of inputs that failed (0 when all went well). Faces already complete in --output_dir (every file
present) are skipped (--overwrite redoes them); the tool's own outputs are never read as inputs.
"""
import os

from absl import flags

from facerecon_jax.io import cli

_CONFIG = cli.define_config(
    "facerecon-reconstruct",
    os.path.join(os.path.dirname(__file__), "..", "configs", "reconstruct.py"),
    "Reconstruction config (configs/reconstruct.py); override with --config.steps=100 etc.")
_INPUT = flags.DEFINE_multi_string("input", None, "Image files, folders or videos (repeatable).")
_OUT = flags.DEFINE_string("output_dir", "out", "Where to write results.")
_FACES = flags.DEFINE_enum("faces", "largest", ["largest", "all"],
                           "Several faces in a photo: the largest, or all of them.")
_VIDEO_EVERY = flags.DEFINE_integer("video_every", 10, "Use every n-th frame of videos.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "At most this many frames per video.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "An R-Net training workdir (facerecon-train): its prediction starts the "
    "fit (--mode fit), is the result (--mode rnet) or is refined briefly (--mode refine).")
_MODE = flags.DEFINE_enum(
    "mode", "fit", ["fit", "rnet", "refine"], "fit: the config's fitting (from the R-Net's "
    "prediction with --checkpoint); rnet: one R-Net forward per batch, no fitting (batch "
    "inference); refine: the R-Net's prediction then --config.refine_steps_landmark + "
    "--config.refine_steps fitting steps.")
_RNET_MIRROR = flags.DEFINE_bool(
    "rnet_mirror", False, "With --checkpoint: R-Net's prediction averaged with its prediction "
    "for the photo flipped left-right, read back through the face model's mirror map (two "
    "forward passes; identity and landmarks a little closer to the truth).")
_TEXTURE = flags.DEFINE_enum(
    "texture", "albedo", ["albedo", "photo", "none"], "Texture map from the photo: divided by "
    "the fitted shading (albedo, for relighting viewers), as it is (photo, the light baked in), "
    "or none (no texture files: faster).")
_TEXTURE_SIZE = flags.DEFINE_integer("texture_size", 1024, "Texture map size in texels.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Redo faces already complete in "
                               "--output_dir (by default they are skipped).")
flags.mark_flag_as_required("input")

TOOL = cli.Tool("facerecon-reconstruct", __doc__, {
    "steps": "steps of the hybrid-loss stage (photo, landmarks, perceptual)",
    "steps_landmark": "steps of the landmark-only stage before it",
    "batch_size": "faces fitted together",
    "model": "face model: default (ICT), a .npz, or BFM files",
    "light": "rgb (27 SH coefficients) or mono (9, the paper's)",
    "perceptual": "the face-embedding loss term (off: faster)",
    "refine_steps": "hybrid steps of --mode refine (refine_steps_landmark: its landmark steps)",
    "landmark_noise": "calibrated (each dlib point weighed by its measured scatter), "
                      "covariance (dlib's calibrated error covariance; with "
                      "--config.landmark_robust=0) or none",
    "landmark_robust": "Cauchy kernel scale of each point's error, inter-ocular distances "
                       "(0.25; 0: squared error, the paper's)",
})


def main(argv):
    del argv
    from facerecon_jax.pipeline import reconstruct_job

    out_dir = cli.output_dir(_OUT.value)
    options = reconstruct_job.Options(
        faces=_FACES.value, video_every=_VIDEO_EVERY.value, max_frames=_MAX_FRAMES.value,
        checkpoint=_CHECKPOINT.value, mode=_MODE.value, rnet_mirror=_RNET_MIRROR.value,
        texture=None if _TEXTURE.value == "none" else _TEXTURE.value,
        texture_size=_TEXTURE_SIZE.value,
        overwrite=_OVERWRITE.value)
    result = reconstruct_job.run(_INPUT.value, out_dir, _CONFIG.value, options)
    reconstruct_job.print_summary(result, out_dir)
    return result["status"]


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
