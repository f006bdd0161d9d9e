"""The debug network trained until it reads identity: ~30 minutes on a 2-core CPU.

configs/debug.py's ResNet-18 (half width, generated faces) at 96 x 96 instead of 64 x 64 (the
identity modes move a 96 px picture 1.5x as many pixels; this network runs as many images/s at
96 px as at 64 on a CPU), with a 4 x 4 stride-4 "patch" stem in place of the paper's 7 x 7
convolution and max pooling (the same 24 x 24 map for the rest of the network at ~0.6x the
network's time on a CPU, so ~1.6x the steps in the same minutes), and the schedule that
measured best within ~30 minutes (benchmarks/RESULTS.md, "A cheaper stem"): 9,500 steps on the
supervised term alone (no render), then 1,000 steps of the supervised term beside the paper's
hybrid loss, with a moving average of the weights; 32,768 generated faces (~5 minutes to make,
written once to <workdir>/synthetic_indoor_96), so the network stops memorising the identities
it has seen; the supervised shape term on the identity's shape alone and the coefficient term
at 5x the debug config's. The held-out report adds 32 people x 4 views (one picture,
averaging, k-means per person).

  facerecon-train --config configs/identity.py --workdir /tmp/rnet_identity

Measured 2026-12-02 (RESULTS.md, run R): identity-only shape 2.81 mm against the mean face's
4.10 (0.686x), landmark NME 0.041, seven of the first 10 identity coefficients correlating with
the truth at >= 0.5 (0.87, 0.76, 0.78, 0.63, 0.80, 0.45, 0.47, 0.50, 0.40, 0.58), held-out
people one picture 2.83 / averaging 2.51 / k-means 2.59 mm (mean face 4.20); 23-25 min on the
faces, ~5 more to make them. (Run O, this config until then: the paper's stem, 6,500 steps on
24,576 faces, no average: 0.730x, five of ten, in 24.5 + 3 min.)
"""
from facerecon_jax.io.config_files import sibling

debug = sibling(__file__, "debug")


def get_config():
    c = debug.get_config()
    c.image_size = 96
    c.stem = "patch"
    # landmark errors are in pixels: the paper's weight scaled by (224 / 96)^2, as the debug
    # config scales it for 64 px
    c.loss_weight_overrides.lan = 1.6e-3 * (224 / 96) ** 2
    c.num_steps = 10500
    c.data.synthetic_examples = 32768
    c.eval_people = 32
    c.supervised.weight = 0.05
    c.supervised.vertex_weight = 0.1
    c.supervised.vertex_fields = "id"
    c.supervised.steps = 0
    c.supervised.alone_steps = 9500
    c.ema_decay = 0.998
    return c
