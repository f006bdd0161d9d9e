"""The debug network trained until it reads identity: ~28 minutes on a 2-core CPU.

configs/debug.py's ResNet-18 (half width, generated faces) at 96 x 96 instead of 64 x 64 (the
identity modes move a 96 px picture 1.5x as many pixels; this network runs as many images/s at
96 px as at 64 on a CPU), with the schedule that measured best within ~30 minutes
(benchmarks/RESULTS.md, "What a fit reads from the same pictures"): 5,500 steps on the
supervised term alone (no render), then 1,000 steps of the supervised term beside the paper's
hybrid loss; 24,576 generated faces (a few minutes to make, written once to
<workdir>/synthetic_indoor_96), so the network stops memorising the identities it has seen;
the supervised shape term on the identity's shape alone and the coefficient term at 5x the
debug config's. The held-out report adds 32 people x 4 views (one picture, averaging, k-means
per person).

  facerecon-train --config configs/identity.py --workdir /tmp/rnet_identity

Measured 2026-12-01 (RESULTS.md, run O): identity-only shape 2.99 mm against the mean face's
4.10 (0.73x), landmark NME 0.047, five of the first 10 identity coefficients correlating with
the truth at >= 0.5, held-out people one picture 3.00 / averaging 2.66 / k-means 2.65 mm (mean
face 4.20); 24.5 min on the faces, ~3 more to make them. (Run J, 1,000 fewer steps on the
supervised term alone: 0.754x in 22 min.)
"""
from facerecon_jax.io.config_files import sibling

debug = sibling(__file__, "debug")


def get_config():
    c = debug.get_config()
    c.image_size = 96
    # landmark errors are in pixels: the paper's weight scaled by (224 / 96)^2, as the debug
    # config scales it for 64 px
    c.loss_weight_overrides.lan = 1.6e-3 * (224 / 96) ** 2
    c.num_steps = 6500
    c.data.synthetic_examples = 24576
    c.eval_people = 32
    c.supervised.weight = 0.05
    c.supervised.vertex_weight = 0.1
    c.supervised.vertex_fields = "id"
    c.supervised.steps = 0
    c.supervised.alone_steps = 5500
    return c
