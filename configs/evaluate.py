"""The evaluation benchmark (Tables 1-2 analogues): sizes, seeds and methods.

The split and the seeds are fixed here and written into the report, so runs are comparable.
"""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.model = "default"
    c.light = "rgb"
    c.n_people = 6                 # held-out people
    c.images_per_person = 5
    c.conditions = ("cooperative", "indoor", "outdoor")
    c.seed = 2026                  # people and images (different from training seeds)
    c.size = 224
    c.radius_mm = 95.0
    c.steps_landmark = 100         # fitting (the reconstruct pipeline, shortened)
    c.steps = 60
    c.perceptual = False
    c.checkpoint = ""              # an R-Net workdir: adds the R-Net row to Table 1
    c.n_init = 10
    c.external_meshes = ""         # folder of <condition>/<image>.obj|ply from another tool
    return c
