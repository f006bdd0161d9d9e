"""R-Net and its training: the network, the data pipeline, generated faces, the train step.

  rnet           R-Net (ResNet-18/34/50 regressing the coefficients)
  data           shards and the deterministic input pipeline
  synthetic      generate-and-render training and benchmark faces
  train          the train step, checkpoints and the training loop

Imports from: io, models, geometry, render, photo, fit.
"""
