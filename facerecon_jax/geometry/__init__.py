"""From coefficients to a posed, lit mesh, and the distances between meshes.

  coefficients   the layout of the coefficient vector
  morphable      shape, albedo and vertex normals from coefficients
  camera         Euler rotation, posing, perspective projection, image-row conversions
  lighting       spherical-harmonics shading
  metrics        MICC / NoW mesh errors and the landmark error

Imports from: io, models.
"""
