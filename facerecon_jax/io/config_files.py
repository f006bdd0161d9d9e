"""Config files (configs/*.py, or a user's own): loaded by path, so they work from the repository
and from an installed package alike (installed, configs/ is `facerecon_jax.configs`)."""
from __future__ import annotations

import importlib.util
import pathlib


def load_module(path):
    """The module of a config file (its `get_config` builds the ConfigDict)."""
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(f"facerecon_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sibling(config_file, name: str):
    """Another config file of the same folder, e.g. `sibling(__file__, "paper").get_config()`."""
    return load_module(pathlib.Path(config_file).with_name(f"{name}.py"))


def get_config(path, arg: str | None = None):
    module = load_module(path)
    return module.get_config(arg) if arg else module.get_config()


def packaged(name: str):
    """The ConfigDict of the package's own configs/<name>.py (installed as
    `facerecon_jax.configs`; in a checkout, configs/ at the repository root). Library defaults
    come from here, so configs/ is the one place they are written."""
    spec = importlib.util.find_spec("facerecon_jax.configs")
    folders = list(spec.submodule_search_locations) if spec else []
    folders.append(pathlib.Path(__file__).resolve().parents[2] / "configs")
    for folder in folders:
        path = pathlib.Path(folder) / f"{name}.py"
        if path.exists():
            return get_config(path)
    raise FileNotFoundError(f"configs/{name}.py not found (looked in {folders})")
