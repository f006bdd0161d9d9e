"""The evaluation benchmark (Tables 1-2 analogues): people, pictures, seeds and methods.

The split and the seeds are fixed here and written into the report, so runs are comparable. The
fitting measured is configs/reconstruct.py's (what users get); `joint` lists what the joint
multi-image fit changes, `ablations` the variants of the ablation table (each a dict of
reconstruct-config overrides; "true_landmarks": True fits to the ground-truth landmarks).
"""
import ml_collections

from facerecon_jax.io.config_files import sibling

reconstruct = sibling(__file__, "reconstruct")


def get_config():
    c = ml_collections.ConfigDict()
    c.fit = reconstruct.get_config()
    c.joint = ml_collections.ConfigDict({"shared": ("id", "tex")})
    c.joint_batch_size = 16
    c.joint_per_condition = False  # joint fits per condition too (All always: every picture)
    c.oracle_images = 2            # pictures per person for the true-landmark row (0: all)
    c.n_people = 20                # held-out people
    c.images_per_person = 5
    c.conditions = ("cooperative", "indoor", "outdoor")
    c.seed = 2026                  # people and pictures (calibration and training use others)
    c.size = 300                   # picture size (the pipeline detects, aligns, crops 224)
    c.detail_mm = 2.0              # out-of-model detail (RMS over the face)
    c.radius_mm = 95.0
    c.checkpoint = ""              # an R-Net workdir: adds the R-Net row to Table 1
    c.checkpoint_mirror = False    # its prediction averaged with the flipped picture's
    c.n_init = 10
    c.external_meshes = ""         # folder of <condition>/<picture>.obj|ply from another tool
    # the ablation table (a subset of the people; 0 people = no ablation)
    c.ablation_people = 0          # facerecon-evaluate --config.ablation_people=5 runs it
    c.ablation_images = 2
    c.ablation_perceptual = False  # + the perceptual term (4-6x the time of a fit)
    c.ablations = ml_collections.ConfigDict({
        "defaults": {},
        "ground-truth landmarks": {"true_landmarks": True},
        "landmarks only (no photometric stage)": {"steps": 0},
        "no expression L1 (the paper's loss)": {"exp_l1": 0.0},
        "expression held neutral": {"expression": "neutral"},
        "landmarks /16": {"landmark_scale": 1.0 / 16},
        "landmarks steer the shape at 1/16 (pose at 1)": {"landmark_shape": 1.0 / 16},
        "landmarks steer the shape at 1/4 (pose at 1)": {"landmark_shape": 0.25},
        "landmarks /4, the expression's pull kept": {"landmark_scale": 0.25,
                                                     "landmark_expression": 4.0},
        "nose and inner mouth x20 (the paper's)": {"nose_mouth_weight": 20.0},
        "dlib's landmarks, coefficient prior x3 (the defaults until 2026-12-02)": {
            "landmarks": "dlib", "prior_scale": 3.0},
        "coefficient prior x3 (the default with dlib's points)": {"prior_scale": 3.0},
        "coefficient prior x4 (the default before the calibrated offsets)": {"prior_scale": 4.0},
        "coefficient prior x8": {"prior_scale": 8.0},
        "jaw contour off": {"contour_weight": 0.0},
        "jaw contour 1/4": {"contour_weight": 0.25},
        "landmark noise none (the paper's per-point weights)": {"landmark_noise": "none"},
        "squared landmark error (no robust kernel)": {"landmark_robust": 0.0},
        "landmark weights the same at every yaw": {"landmark_noise_by_yaw": False},
        "landmark noise as dlib's error covariance": {"landmark_noise": "covariance",
                                                      "landmark_robust": 0.0},
        "learned landmark embedding": {"landmark_map": "learned"},
        "landmark vertices without dlib's calibrated offsets": {"landmark_map": "model"},
        "landmark gain 2/3 (dlib's slope on these heads)": {"landmark_gain": 0.66},
        "hybrid 200 steps at lr 2e-2 (the paper's schedule)": {"steps": 200, "lr": 0.02},
        "eye and mouth openings at half the landmark weight": {"landmark_openings": 0.5},
        "photometric error squared": {"photometric_kernel": "squared"},
        "mono light": {"light": "mono"},
        "fit at 224 px (the paper's crop size)": {"fit_size": 224},
    })
    return c
