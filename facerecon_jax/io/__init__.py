"""Reading and writing: where outside assets live, atomic files, config files, mesh and image
export, the command-line frame every tool runs in, output folders, progress, headless Chromium.

  assets         where outside data lives (one environment variable), the cache, dlib's files
  atomic_file    files written whole or not at all, with the user's permissions
  config_files   loading ml_collections config files by path (configs/ beside each other)
  export         OBJ / PLY meshes, textured OBJ + MTL and binary glTF, coefficient files, PNGs
  cli            flags, --help, one-line errors: the frame of every launcher
  output_folder  output folders that never mix inputs and outputs, reports merged per face
  progress       a text progress bar (steps/s and ETA of real work)
  browser        headless Chromium through the DevTools protocol (page tests, benchmarks)

Imports nothing else from the package.
"""
