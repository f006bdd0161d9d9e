"""Defaults of `facerecon-reconstruct` (fitting photos without a trained network).

The fitting settings here are also what `facerecon-evaluate` measures (configs/evaluate.py uses
this file), so the benchmark's "fitting" row is what a user gets.
"""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.model = "default"            # face model: "default" (ICT), a .npz, or BFM files
    c.light = "rgb"                # "rgb" (27 SH coefficients) fits colour casts; "mono" = paper
    c.weights = "paper"            # base loss weights: "paper" or "deep3d"
    c.steps_landmark = 150         # stage 1: landmarks + regularisers
    c.steps = 100                  # stage 2: the hybrid loss
    c.lr = 0.05
    # --mode refine (an R-Net checkpoint's prediction, then a short fit): the two stages' steps
    c.refine_steps_landmark = 20
    c.refine_steps = 60
    c.lr_pose = 0.01
    c.perceptual = False           # dlib face-embedding cosine term (paper: on; here it costs
                                   # 4.5x the time and did not lower the shape error)
    c.batch_size = 8
    c.fit_size = 112               # picture size the fit renders and compares at: the 224 crop
                                   # resized (112: 1/4 of the pixels, the same accuracy at ~0.7x
                                   # the time, docs/accuracy.md item 11; 224: the paper's; the
                                   # landmark weight follows as (224 / fit_size)^2)
    c.backend = "scatter"
    # priors and landmark trust for per-photo fitting (docs/accuracy.md has the measurements;
    # the paper's loss is exp_l1 0, landmark_scale 1, nose_mouth_weight 20, prior_scale 1)
    c.expression = "free"          # "neutral": blendshapes held at 0 (photos known neutral)
    c.exp_l1 = 0.01                # L1 weight on blendshape weights: unused ones stay at 0
    c.landmark_scale = 1.0         # multiplies the paper's landmark weight (the synthetic
                                   # benchmark prefers 1/16; real photos then lose alignment)
    c.nose_mouth_weight = 1.0      # extra weight of nose and inner mouth (paper: 20); with
                                   # the calibrated noise each point already weighs by its
                                   # measured scatter (docs/accuracy.md item 10)
    c.landmark_shape = 1.0         # share of the landmark gradient reaching identity and
                                   # expression (pose keeps all of it)
    c.landmark_expression = 1.0    # multiplies that share for expression alone
    c.landmark_gain = 1.0          # share of a face's identity deviation the detector's points
                                   # follow (dlib on the benchmark's heads: ~0.66,
                                   # benchmarks/landmark_gain.py); 1: taken as exact
    c.prior_scale = 1.0            # multiplies the coefficient regulariser (the paper's, 1):
                                   # with the face mesh's points the paper's weight is best on
                                   # people apart from the evaluation's (x3 0.794x, x2 0.772x,
                                   # x1.5 0.759x, x1 0.750x; docs/accuracy.md item 24). dlib's
                                   # noisier points wanted x3 (items 6, 15: use it with
                                   # --config.landmarks=dlib); a joint fit counts it once per
                                   # person
    c.landmark_noise = "calibrated"  # each detected point weighted by 1 / its measured scatter^2
                                   # (landmark_embedding.detector_noise: the jaw contour ~1/5
                                   # of an inner point); "none": the paper's weights;
                                   # "covariance": the points' error covariance about the calibrated
                                   # offsets (errors shared by the points count once; better
                                   # on the benchmark, misaligns real photos: accuracy.md 16)
    c.landmark_noise_by_yaw = True  # the points stray farther as the head turns (the mesh's
                                   # x1.4 at 25 degrees, x2.3 at 45; dlib's x1.5, x2.5:
                                   # landmark_embedding.
                                   # detector_noise_by_yaw, calibrated with the offsets): each
                                   # picture's landmark weights / that ratio^2 at its fitted yaw
                                   # (docs/accuracy.md item 21); False: the same at every yaw
    c.landmark_robust = 0.25       # a Cauchy kernel on each point's weighted error, its scale
                                   # in inter-ocular distances: ~2.6x dlib's median point's
                                   # measured scatter (0.095; the mesh's 0.044: at 0.11 within
                                   # noise, item 24), so a point the detector put off the face
                                   # pulls logarithmically (docs/accuracy.md item 18); 0: the
                                   # squared error (the paper's)
    c.landmark_openings = 0.0      # > 0: the eyes' and the mouth's openings as detected
                                   # (upper against lower lid and inner lip; an error all of
                                   # the points share cancels there), this many times the
                                   # landmark term's weight (losses.landmark_openings; DECA's
                                   # eye closure term). 0.5 opens real smiles and costs the
                                   # benchmark ~0.01x (docs/accuracy.md item 22)
    c.photometric_kernel = "distance"  # "squared": each pixel's colour distance squared, at
                                   # the distance's pull for a pixel at the picture's mean
                                   # (docs/accuracy.md item 22: the benchmark gains, real
                                   # smiles close unless the openings hold them)
    c.contour_weight = 1.0         # per-landmark weight of the 17 jaw-contour points
    c.landmarks = "mesh"           # the detector's 68 points: "mesh" (MediaPipe's face mesh
                                   # started from dlib's points; docs/accuracy.md item 24) or
                                   # "dlib" (dlib's predictor); the calibration files follow
    c.landmark_map = "calibrated"  # "calibrated": the model's landmark vertices and the shipped
                                   # 3D offset of the detector's points from each
                                   # (landmark_embedding; other models: their vertices);
                                   # "model": the vertices alone; "learned": the shipped
                                   # embedding (other vertices)
    c.shared = ()                  # joint fits: fields one value per person (e.g. ("id", "tex"))
    c.shared_correlation = 0.0     # joint fits: the share of the detector's landmark error that
                                   # one person's pictures have in common (rho); the prior of
                                   # the shared fields counts 1 + (n - 1) rho times for n
                                   # pictures (0: as if their errors were independent)
    return c
