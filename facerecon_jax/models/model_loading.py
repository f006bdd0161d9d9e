"""One entry point for every face model a user can name: the default ICT model, a BFM 2009
file or folder (Deep3DFaceRecon layouts), or a facerecon-jax .npz."""
from __future__ import annotations

import pathlib

from facerecon_jax.models import face_model, ict_model


def load_face_model(spec: str = "default") -> face_model.FaceModel:
    """"default" (ICT, built from the assets), a facerecon .npz, or BFM files / folder."""
    if spec in ("", "default", "ict"):
        return ict_model.load_default()
    path = pathlib.Path(spec).expanduser()
    if path.suffix == ".npz":
        return face_model.load(path)
    from facerecon_jax.models import bfm
    return bfm.load_bfm(path)
