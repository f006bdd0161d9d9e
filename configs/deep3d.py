"""Deep3DFaceRecon's settings: RGB light (257 coefficients with BFM), its loss weights
(texture regulariser, light-channel variance), batch 32, 20 epochs, lr x0.2 every 10 epochs."""
from facerecon_jax.io.config_files import sibling

paper = sibling(__file__, "paper")


def get_config():
    c = paper.get_config()
    c.light = "rgb"
    c.loss_weights = "deep3d"
    c.batch_size = 32
    c.num_epochs = 20
    c.lr_decay_epochs = 10
    c.lr_decay_factor = 0.2
    return c
