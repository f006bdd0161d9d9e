"""Defaults of `facerecon-reconstruct` (fitting photos without a trained network)."""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.model = "default"            # face model: "default" (ICT), a .npz, or BFM files
    c.light = "rgb"                # "rgb" (27 SH coefficients) fits colour casts; "mono" = paper
    c.weights = "paper"            # loss weights: "paper" or "deep3d"
    c.steps_landmark = 150         # stage 1: landmarks + regularisers
    c.steps = 200                  # stage 2: the hybrid loss
    c.lr = 0.02
    c.lr_pose = 0.01
    c.perceptual = True            # dlib face-embedding cosine term
    c.batch_size = 8
    c.backend = "scatter"
    return c
