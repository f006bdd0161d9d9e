"""The paper's model on a TPU pod slice: the same program on every host (launch with
--coordinator_address / --num_processes / --process_id, or let TPU runtimes fill them in),
a global batch split over all devices, the scatter-free rasterizer back end."""
from facerecon_jax.io.config_files import sibling

paper = sibling(__file__, "paper")


def get_config():
    c = paper.get_config()
    c.batch_size = 256
    c.learning_rate = 1e-4 * 8     # linear scaling from the paper's batch of 8 (tune)
    c.render_backend = "tiled"
    c.log_every = 50
    c.checkpoint_every = 2_000
    return c
