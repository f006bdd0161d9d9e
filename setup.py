"""facerecon-jax: 3D face reconstruction from one image or a set of images, in JAX/Flax.

Metadata, dependencies and entry points are in pyproject.toml; this file only adds the two
folders that install inside the package namespace (`launch` -> `facerecon_jax.launch`,
`configs` -> `facerecon_jax.configs`), so `pip install .` and `pip install -e .` both work.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["facerecon_jax", "facerecon_jax.*"])
    + ["facerecon_jax.launch", "facerecon_jax.configs"],
    package_dir={"facerecon_jax.launch": "launch", "facerecon_jax.configs": "configs"},
)
