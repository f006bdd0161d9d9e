"""configs/identity.py run ~2.5x longer on twice the faces: ~64 minutes on a 2-core CPU.

The same pictures (96 px) and losses as configs/identity.py, with the paper's ResNet stem
(the run measured here predates the patch stem of configs/identity.py, and is not measured with
it); 16,000 steps (15,000 on the supervised term alone, then 1,000 beside the paper's hybrid
loss) on 49,152 generated faces (~10 passes over them at batch 16: twice the faces
keep the network from memorising the identities it has seen). Length is what moves identity
(benchmarks/RESULTS.md, "A longer run"); this is the run that shows how far it goes, where
configs/identity.py is the one that fits in ~30 minutes.

  facerecon-train --config configs/identity_long.py --workdir /tmp/rnet_identity_long

Measured 2026-12-01 (RESULTS.md, run P; 7 min to make the faces, 57 to train, alone on the
CPU): identity-only shape 2.65 mm against the mean face's 4.10 (0.645x), landmark NME 0.040,
eight of the first 10 identity coefficients correlating with the truth at >= 0.5 (0.89, 0.81,
0.78, 0.77, 0.80, 0.63, 0.49, 0.57, 0.45, 0.67), held-out people one picture 2.66 / averaging
2.33 / k-means 2.38 mm (mean face 4.20). With the weights' moving average (`ema_decay`
0.998, since 2026-12-01's fourteenth session; run P resumed at step 12,000 with it, which at a
~500-step horizon is the same average as from step 0): 2.57 mm (0.627x), nine of ten >= 0.5
(0.90, 0.81, 0.80, 0.78, 0.82, 0.65, 0.52, 0.57, 0.48, 0.67; mode 9 the one below), held-out
people 2.62 / 2.29 / 2.35 mm, landmarks 0.040. (configs/identity.py keeps the optimiser's
weights: in its shorter run the network still improves fast and the average lags, 0.739x
against 0.730x.)
"""
from facerecon_jax.io.config_files import sibling

identity = sibling(__file__, "identity")


def get_config():
    c = identity.get_config()
    c.arch = "resnet18"
    c.stem = "imagenet"
    c.num_steps = 16000
    c.supervised.alone_steps = 15000
    c.data.synthetic_examples = 49152
    c.checkpoint_every = 3000
    c.ema_decay = 0.998
    return c
