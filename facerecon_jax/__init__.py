"""facerecon-jax: 3D face reconstruction in JAX/Flax.

Modules (one idea each):
  assets        where outside data lives (one environment variable) and the cache
  face_model    the FaceModel arrays and the .npz schema every face model is stored in
  ict_model     conversion of ICT Face Model Light (the default model)
  bfm           readers for the Basel Face Model 2009 files Deep3DFaceRecon users have
  coefficients  the layout of the coefficient vector
  morphable     shape, albedo and vertex normals from coefficients
  camera        Euler rotation, posing, perspective projection, image-row conversions
  lighting      spherical-harmonics shading
  rasterizer    visibility (triangle id per pixel), not differentiated
  interpolate   differentiable barycentrics and attribute interpolation
  splat         soft (rasterize-then-splat) compositing with silhouette gradients
  renderer      the whole face formation: coefficients to image
  export        OBJ / PLY meshes, coefficient files, PNG renders
"""

__version__ = "0.1.0"
