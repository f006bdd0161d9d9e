"""The debug network trained until it reads identity: ~30 minutes on a 2-core CPU.

configs/debug.py's ResNet-18 (half width, 64 x 64, generated faces) with the schedule that
measured best (benchmarks/RESULTS.md, "The schedule and the data after the supervised steps"):
4,500 steps on the supervised term alone (no render: ~0.55x the time of a hybrid step), then
1,000 steps of the supervised term beside the paper's hybrid loss; 24,576 generated faces (3
minutes to make, written once to <workdir>/synthetic_indoor_64), so the network stops
memorising the identities it has seen; the supervised shape term on the identity's shape alone
(the expression's gradient then goes to the coefficient term and the landmarks), and the
coefficient term at 5x the debug config's. The held-out report adds 32 people x 4 views
(one picture, averaging, k-means per person).

  facerecon-train --config configs/identity.py --workdir /tmp/rnet_identity

Measured 2026-12-01 (RESULTS.md, run G): identity-only shape 3.26 mm against the mean face's
4.10 (0.79x), landmark NME 0.051, held-out people one picture 3.10 / averaging 2.83 / k-means
2.81 mm (mean face 4.20).
"""
from facerecon_jax.io.config_files import sibling

debug = sibling(__file__, "debug")


def get_config():
    c = debug.get_config()
    c.num_steps = 5500
    c.data.synthetic_examples = 24576
    c.eval_people = 32
    c.supervised.weight = 0.05
    c.supervised.vertex_weight = 0.1
    c.supervised.vertex_fields = "id"
    c.supervised.steps = 0
    c.supervised.alone_steps = 4500
    return c
