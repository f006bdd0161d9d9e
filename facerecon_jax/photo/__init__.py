"""From a photo to the inputs of fitting: faces and landmarks, the aligned crop, the skin
attention mask and the face embedding of the perceptual loss.

  detection      faces and 68 landmarks (dlib), image / video / landmark-file readers
  alignment      Deep3DFaceRecon's 224 x 224 alignment, its inverse and paste-back
  skin           the naive-Bayes skin attention mask
  dlib_format    a reader of dlib's serialised networks
  face_embedding dlib's face-recognition ResNet in Flax, differentiable face chips

Imports from: io.
"""
