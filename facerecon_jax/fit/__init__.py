"""Analysis by synthesis: the hybrid loss and the compiled solver that fits coefficients to photos.

  losses             the hybrid loss (photometric, landmarks, perceptual, regularisers)
  fitting            per-image (and joint per-person) optimisation of the coefficients
  landmark_embedding where a detector's 68 points lie on the model (shipped in data/)

Imports from: io, models, geometry, render, photo.
"""
