"""The paper's R-Net training (section 4): ResNet-50, Adam lr 1e-4, batch 8, 500K iterations,
mono light (239 coefficients with BFM), the paper's loss weights."""
import ml_collections

from facerecon_jax.training.data import AugmentConfig


def get_config():
    c = ml_collections.ConfigDict()
    c.arch = "resnet50"            # resnet10 | resnet18 | resnet34 | resnet50
    c.width = 64                   # base filters (64 = the standard ResNet)
    c.head = "mean"                # "mean": global average pooling (the paper's ResNet) | "flatten"
    c.stem = "imagenet"            # 7 x 7 / 2 conv + max pool (the paper's) | "patch" (4 x 4 / 4)
    c.light = "mono"               # 9 SH coefficients (paper) or "rgb" (27)
    c.image_size = 224
    c.face_model = "default"       # "default" (ICT), a face-model .npz, or BFM files
    c.loss_weights = "paper"       # "paper" | "deep3d"
    c.loss_weight_overrides = ml_collections.ConfigDict()   # e.g. {"lan": 0.02}
    c.perceptual = True
    c.render_backend = "scatter"   # "tiled" on TPU
    c.batch_size = 8               # global, over all hosts and devices
    c.learning_rate = 1e-4
    c.lr_decay_epochs = 0          # 0: constant learning rate
    c.lr_decay_factor = 0.2
    c.ema_decay = 0.0              # > 0: keep a moving average of the weights (e.g. 0.998),
                                   # which checkpoints hold and prediction uses; 0: the paper's
    c.num_steps = 500_000
    c.num_epochs = 0               # > 0: num_steps = num_epochs x steps per epoch
    c.log_every = 100
    c.checkpoint_every = 5_000
    c.keep_checkpoints = 3
    c.seed = 0
    c.backbone_checkpoint = ""     # user-supplied ImageNet weights (Flax variables), optional
    c.data = ml_collections.ConfigDict()
    c.data.dir = ""                # shards written by facerecon-prepare-data
    c.data.synthetic_examples = 0  # > 0: train on this many generated faces instead
    c.data.synthetic_condition = "train"
    c.data.augment = True
    ranges = AugmentConfig()       # shift +-10 px at 224, scale 0.9-1.1, rotation +-10 deg,
    c.data.augment_shift = ranges.shift          # a left-right flip with probability 0.5
    c.data.augment_scale = ranges.scale
    c.data.augment_rotation = ranges.rotation
    c.data.augment_flip = ranges.flip
    c.data.views_per_person = 1    # > 1: batches of batch_size / k people x k images each
                                   # (generated faces: k views of each identity)
    c.eval_examples = 0            # > 0: held-out synthetic faces scored at the end
    c.eval_people = 0              # > 0: and held-out people in eval_views_per_person images
    c.eval_views_per_person = 4    # each (single image vs averaging vs k-means per person)
    c.eval_mirror = False          # also score each prediction averaged with the flipped
                                   # picture's (eval.json "mirror_average")
    c.identity_consistency = 0.0   # weight of each image's squared identity distance from its
                                   # person's mean in the batch (needs views_per_person > 1)
    # supervised term on generated faces (their true coefficients): weight x squared coefficient
    # error + vertex_weight x mean squared shape error (mm^2; vertex_fields "id+exp", or "id":
    # the identity's shape alone), for the first `steps` steps (0: the whole run); the first
    # `alone_steps` of them train on the supervised term only (no render); `mirror_flips`: a
    # picture the augmentation flipped is supervised with its mirror image's coefficients
    # (else its shape and pose are left out). Not the paper's loss: off here.
    c.supervised = ml_collections.ConfigDict({"weight": 0.0, "vertex_weight": 0.0, "steps": 0,
                                              "vertex_fields": "id+exp", "alone_steps": 0,
                                              "mirror_flips": False})
    return c
