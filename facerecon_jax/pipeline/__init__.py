"""The photo-folder jobs behind the command-line tools, and what they write for people to look at.

  reconstruct     the photo pipeline behind facerecon-reconstruct (detect, align, fit, write)
  reconstruct_job a whole facerecon-reconstruct run over a folder
  photo_shards    photos to training shards (facerecon-prepare-data)
  textured_face   the textured-face files of a fitted face or an aggregated person
  results_page    index.html with a three.js viewer (viewer/), for reconstruct and aggregate
  aggregate_job   a whole facerecon-aggregate run (joint fits, per-person faces, results page)
  render_job      facerecon-render: coefficient files to images and meshes

Imports from every package above it except eval.
"""
