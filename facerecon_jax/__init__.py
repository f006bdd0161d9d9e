"""facerecon-jax: 3D face reconstruction in JAX/Flax.

Modules (one idea each):
  assets         where outside data lives (one environment variable), the cache, dlib's files
  face_model     the FaceModel arrays and the .npz schema every face model is stored in
  ict_model      conversion of ICT Face Model Light (the default model)
  bfm            readers for the Basel Face Model 2009 files Deep3DFaceRecon users have
  grid_model     a synthetic face-like mesh of any size, for tests and benchmarks
  model_loading  one entry point for every face model a user can name
  coefficients   the layout of the coefficient vector
  morphable      shape, albedo and vertex normals from coefficients
  camera         Euler rotation, posing, perspective projection, image-row conversions
  lighting       spherical-harmonics shading
  rasterizer     visibility (triangle id per pixel), not differentiated
  interpolate    differentiable barycentrics and attribute interpolation
  splat          soft (rasterize-then-splat) compositing with silhouette gradients
  renderer       the whole face formation: coefficients to image
  export         OBJ / PLY meshes, textured OBJ + MTL and binary glTF, coefficient files, PNGs
  uv_layout      the ICT model's per-corner UVs, following its triangles
  mirror         left-right mirror partners of mesh vertices
  texture        texture maps: baking a photo, mirror / albedo fill, averages, textured renders
  textured_face  the textured-face files of a fitted face or an aggregated person
  results_page   index.html with a three.js viewer, for reconstruct and aggregate folders
  browser        headless Chromium through the DevTools protocol (page tests, benchmarks)
  detection      faces and 68 landmarks (dlib), image / video / landmark-file readers
  alignment      Deep3DFaceRecon's 224 x 224 alignment, its inverse and paste-back
  skin           the naive-Bayes skin attention mask
  dlib_format    a reader of dlib's serialised networks
  face_embedding dlib's face-recognition ResNet in Flax, differentiable face chips
  losses         the hybrid loss (photometric, landmarks, perceptual, regularisers)
  fitting        analysis by synthesis: per-image optimisation of the coefficients
  reconstruct    the photo pipeline behind facerecon-reconstruct
  visualize      overlays and landmark drawings
  progress       a text progress bar
  rnet           R-Net (ResNet-18/34/50 regressing the coefficients)
  train          the train step, checkpoints and the training loop
  data           shards and the deterministic input pipeline
  synthetic      generate-and-render training and benchmark faces
  kmeans         jax-native k-means (vmapped restarts)
  aggregate      multi-image aggregation (paper mode, per person, baselines)
  metrics        MICC / NoW / landmark metrics
  evaluation     the Tables 1-2 benchmark on rendered faces
"""

__version__ = "0.1.0"
