"""Face models: the arrays every model is stored in, and the readers of the models users have.

  face_model     the FaceModel arrays and the .npz schema every face model is stored in
  ict_model      conversion of ICT Face Model Light (the default model)
  bfm            readers for the Basel Face Model 2009 files Deep3DFaceRecon users have
  grid_model     a synthetic face-like mesh of any size, for tests and benchmarks
  model_loading  one entry point for every face model a user can name
  uv_layout      the ICT model's per-corner UVs, following its triangles
  mirror         left-right mirror partners of mesh vertices

Imports from: io.
"""
