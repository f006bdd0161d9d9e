"""One `facerecon-reconstruct` run: inputs in, a folder of faces out, nothing lost.

Before any work the output folder is checked (`output_folder.check_writable`) and every input
must exist. Then: temporaries of an interrupted run are removed; the tool's own outputs are
never taken as inputs; inputs sharing a name get distinct names (said on the console); inputs
whose faces are already complete in the folder are skipped (said, with how many) unless
`overwrite`; faces are fitted in batches and written, and after every batch `report.json` (one
record per face, merged with earlier runs) is rewritten atomically, so a killed run keeps what it
finished. The exit status is the number of inputs that failed (at most 100).
"""
from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Callable, Sequence

from facerecon_jax.fit import fitting
from facerecon_jax.geometry import coefficients
from facerecon_jax.io import cli, output_folder, progress
from facerecon_jax.photo import detection, face_embedding
from facerecon_jax.pipeline import reconstruct, results_page
from facerecon_jax.models.model_loading import load_face_model


class CheckpointMismatchError(cli.UsageError):
    """The R-Net checkpoint predicts a vector of another size than the face model needs."""


MODES = ("fit", "rnet", "refine")


def fit_settings(cfg, mode: str = "fit", checkpoint: str | None = None) -> fitting.FitConfig:
    """The fitting a mode runs: "fit" the config's two stages (from the R-Net's prediction with
    a checkpoint, else from the mean face); "rnet" none (one R-Net forward is the result);
    "refine" the R-Net's prediction refined for the config's refine_steps_landmark +
    refine_steps. The last two need a checkpoint."""
    if mode not in MODES:
        raise cli.UsageError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "fit" and not checkpoint:
        raise cli.UsageError(f"--mode {mode} runs a trained R-Net: give its training workdir "
                             f"with --checkpoint (facerecon-train --workdir ...)")
    fit_cfg = fitting.FitConfig.from_config(cfg)
    if mode == "rnet":
        return dataclasses.replace(fit_cfg, steps_landmark=0, steps=0)
    if mode == "refine":
        return dataclasses.replace(fit_cfg, steps_landmark=int(cfg.refine_steps_landmark),
                                   steps=int(cfg.refine_steps))
    return fit_cfg


@dataclasses.dataclass
class Options:
    faces: str = "largest"
    video_every: int = 10
    max_frames: int | None = None
    checkpoint: str | None = None
    mode: str = "fit"
    rnet_mirror: bool = False
    texture: str | None = "albedo"
    texture_size: int = 1024
    overwrite: bool = False


def _err(msg: str) -> None:
    sys.stderr.write(f"\n{msg}\n")


def run(inputs: Sequence[str], out_dir, cfg, options: Options | None = None,
        say: Callable[[str], None] = print, detector: detection.FaceDetector | None = None,
        stream=None) -> dict:
    """Reconstruct every face of `inputs` into `out_dir` with the reconstruct config `cfg`.
    Returns {"status": exit status, "report": the merged report, "results", "failures",
    "skipped": inputs left as they were, "ignored": outputs not taken as inputs, "renamed"}."""
    options = options or Options()
    fit_settings(cfg, options.mode, options.checkpoint)     # a wrong mode fails before any work
    if options.rnet_mirror and not options.checkpoint:
        raise cli.UsageError("--rnet_mirror averages an R-Net's predictions: give its training "
                             "workdir with --checkpoint")
    out_dir = output_folder.check_writable(out_dir)
    reconstruct.check_inputs(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = output_folder.remove_stale_temporaries(out_dir)
    if stale:
        say(f"removed {len(stale)} temporary file(s) an interrupted run left in {out_dir}")
    old = output_folder.read_report(out_dir)
    ignored: list = []
    sources = list(reconstruct.iter_sources(inputs, options.video_every, options.max_frames,
                                            ignored))
    if ignored:
        say(f"left out {len(ignored)} picture(s) that facerecon-reconstruct wrote (outputs are "
            f"never inputs), e.g. {ignored[0]}")
    renamed: list = []
    output_folder.assign_names(
        sources, {f["name"]: output_folder.source_key(f.get("source", ""))
                  for f in old.get("faces", [])}, lambda m: (renamed.append(m), say(m)))
    skipped = []
    if not options.overwrite:
        done = output_folder.complete_sources(out_dir, old)
        skipped = [s for s in sources if output_folder.source_key(s.path) in done]
        sources = [s for s in sources if output_folder.source_key(s.path) not in done]
        if skipped:
            say(f"skipped {len(skipped)} input(s) whose faces are already complete in {out_dir} "
                f"(all files present); --overwrite redoes them")
    times = progress.StageTimes()
    result = {"results": [], "failures": [], "skipped": [s.path for s in skipped],
              "ignored": ignored, "renamed": renamed, "stages": times}
    if not sources and not skipped:
        raise reconstruct.InputError(f"no images or videos found in {', '.join(inputs)}")
    results, failures = result["results"], result["failures"]
    if sources:
        _fit_all(sources, out_dir, cfg, options, results, failures, detector, stream,
                 lambda: _save(out_dir, old, results, failures), times)
    report = _save(out_dir, old, results, failures)
    results_page.write_reconstruct_page(out_dir, report)
    failed_sources = {f["source"] for f in failures}
    result.update(report=report, status=min(len(failed_sources), 100))
    return result


def _save(out_dir, old: dict, results, failures) -> dict:
    """This run's faces and failures merged into the folder's report as it was before the run
    (`old`), written atomically."""
    merged = output_folder.merge_report(old, results, failures,
                                        [r["source"] for r in results]
                                        + [f["source"] for f in failures])
    output_folder.write_report(out_dir, merged)
    return merged


def _fit_all(sources, out_dir, cfg, options, results, failures, detector, stream, save_report,
             times=None):
    model = load_face_model(cfg.model)
    predictor, light = None, cfg.light
    if options.checkpoint:
        from facerecon_jax.training import train  # orbax only when asked for
        meta = train.checkpoint_meta(options.checkpoint)
        light = meta["light"]
        need = coefficients.CoeffLayout.for_model(model, light).size
        if need != meta["num_outputs"]:
            raise CheckpointMismatchError(
                f"--checkpoint {options.checkpoint} predicts {meta['num_outputs']} coefficients; "
                f"the face model {model.info.get('name')} with {light} light needs {need}: "
                f"give the --config.model the network was trained for")
        predictor, _ = train.load_predictor(
            options.checkpoint, mirror_model=model if options.rnet_mirror else None)
    layout = coefficients.CoeffLayout.for_model(model, light)
    fit_cfg = fit_settings(cfg, options.mode, options.checkpoint)
    embed_params = face_embedding.load_face_embedding() if cfg.perceptual else None
    detector = detector or detection.FaceDetector(landmarks=cfg.landmarks)
    bar = progress.Progress(len(sources), unit="image", stream=stream)

    def note():
        return f"{len(results)} faces written, {len(failures)} failed"

    def on_step(stage, step, n_steps, loss, sec_per_step, n_faces):
        speed = f", {sec_per_step:.2f} s/step" if sec_per_step else ""
        bar.update(0, note=f"fitting {n_faces} faces: {stage} {step}/{n_steps}{speed}, "
                           f"loss {loss:.4f}")

    def on_failure(f):
        if not f["error"].startswith("cannot write"):
            _err(f"skipped {f['source']}: {f['error']}")
            bar.update(1, note=note())

    reconstruct.reconstruct_sources(
        ((out_dir, s) for s in sources), model, layout, fit_cfg, detector=detector,
        faces=options.faces, batch_size=cfg.batch_size, embed_params=embed_params,
        landmark_map=fitting.landmark_map_for(model, cfg.landmark_map, cfg.landmarks),
        predictor=predictor,
        texture=options.texture, texture_size=options.texture_size,
        on_face=lambda source_done: bar.update(1 if source_done else 0, note=note()),
        on_failure=on_failure, on_batch=save_report, on_step=on_step, results=results,
        failures=failures, times=times)
    # (the report is saved after every batch: a killed run keeps what it finished)
    bar.note = note()
    bar.close()


def print_summary(result: dict, out_dir, say: Callable[[str], None] = print) -> None:
    out_dir = pathlib.Path(out_dir)
    for r in result["results"]:
        psnr = (f", texture PSNR {r['texture_psnr_db']:.1f} dB" if r.get("texture_psnr_db")
                is not None else "")
        say(f"{r['name']}: landmark error {r['landmark_error_nme']:.4f} (NME, inter-ocular)"
            f"{psnr} -> {out_dir / r['name']}.obj")
    say(f"results page: {(out_dir / 'index.html').resolve().as_uri()}")
    times = result.get("stages")
    if times is not None and times.seconds:
        say(f"speed per stage: {times.summary()}")
    for f in result["failures"]:
        say(f"FAILED {f['source']}: {f['error']}")
