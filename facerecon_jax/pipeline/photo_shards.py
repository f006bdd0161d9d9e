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
