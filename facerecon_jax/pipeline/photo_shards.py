"""Training shards from photos (facerecon-prepare-data --input): each face detected, aligned
and masked as the reconstruction pipeline does it, written with its crop landmarks, skin
attention and alignment; files that cannot be read or have no face are listed in the index."""
from __future__ import annotations

import sys

import numpy as np

from facerecon_jax.photo import detection
from facerecon_jax.pipeline import reconstruct
from facerecon_jax.training import data


def write_photo_shards(inputs, out_dir, model, *, shard_size: int, faces: str = "largest",
                       video_every: int = 1, max_frames=None, overwrite: bool = False,
                       progress=None) -> dict:
    """The shards' index (num_examples, skipped, ...). `progress`: a Progress class."""
    sources = list(reconstruct.iter_sources(inputs, video_every, max_frames))
    writer = data.ShardWriter(out_dir, shard_size, source="photos",
                              metadata={"face_model": model.info.get("name", ""),
                                        "inputs": list(inputs)},
                              overwrite=overwrite)
    if not sources:
        sys.stderr.write(f"no images or videos found in {list(inputs)}\n")
    detector = detection.FaceDetector()
    bar = progress(len(sources), unit="image") if progress else None
    for src in sources:
        try:
            found = reconstruct.prepare(src, model, detector, faces)
        except (detection.ImageReadError, detection.NoFaceError, detection.LandmarkFileError,
                ValueError) as e:
            reason = str(e)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
            reason = f"{type(e).__name__}: {e}"
        else:
            reason = None
            for f in found:
                writer.add({"image": f.crop, "landmarks": f.lm68_crop,
                            "attention": f.attention, "name": f.name,
                            "trans_params": np.asarray(f.align.to_array(), np.float32)})
        if reason is not None:
            writer.skip(src.path, reason)
            sys.stderr.write(f"\nskipped {src.path}: {reason}\n")
        if bar:
            bar.update(1, note=f"{writer.num_examples} faces, {len(writer.skipped)} skipped")
    if bar:
        bar.close()
    return writer.close()


def prepare_data(out_dir, model, *, inputs=(), synthetic: int = 0, condition: str = "train",
                 seed: int = 0, size: int = 224, light: str = "mono", shard_size: int = 1000,
                 faces: str = "largest", video_every: int = 10, max_frames=None,
                 overwrite: bool = False, log=print) -> int:
    """What facerecon-prepare-data writes: shards of photos (`inputs`; skipped ones are logged)
    or, with `synthetic` > 0, that many generated faces with their ground truth. Returns the
    number of examples written."""
    from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: PLC0415
    from facerecon_jax.io import progress  # noqa: PLC0415
    from facerecon_jax.training import synthetic as synth  # noqa: PLC0415
    if synthetic:
        bar = progress.Progress(synthetic, unit="face")
        index = synth.write_synthetic_shards(
            out_dir, model, CoeffLayout.for_model(model, light), synthetic, seed=seed,
            condition=condition, shard_size=shard_size, size=size, progress=bar,
            overwrite=overwrite)
        bar.close()
        return index["num_examples"]
    index = write_photo_shards(inputs, out_dir, model, shard_size=shard_size, faces=faces,
                               video_every=video_every, max_frames=max_frames,
                               overwrite=overwrite, progress=progress.Progress)
    for s in index["skipped"]:
        log(f"SKIPPED {s['source']}: {s['reason']}")
    return index["num_examples"]
