"""Write the public-domain face photos that ship inside installed packages into a folder.

  python -m launch.example_photos --output_dir photos/

scikit-image's `astronaut` (Eileen Collins, NASA) and matplotlib's `grace_hopper.jpg` (US Navy),
both public domain: something to reconstruct on a fresh install with nothing downloaded.
"""
import os
import shutil

from absl import flags

from facerecon_jax.io import cli

_OUT = flags.DEFINE_string("output_dir", "photos", "Folder to write the photos into.")

TOOL = cli.Tool("facerecon-example-photos", __doc__)


def main(argv):
    del argv
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    cli.output_dir(_OUT.value)
    Image.fromarray(skimage.data.astronaut()).save(os.path.join(_OUT.value, "astronaut.png"))
    shutil.copy(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False),
                os.path.join(_OUT.value, "grace_hopper.jpg"))
    print(f"wrote astronaut.png and grace_hopper.jpg to {_OUT.value}")


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
