"""facerecon-aggregate's job: person folders in, one face per person out (the launcher only
parses flags). Photos are fitted first (jointly per person in joint mode, docs/design.md §10),
coefficient files are read as they are; then `aggregate` turns each person's vectors into one,
and every person gets a mesh, coefficients, a render, a texture, and the results page."""
from __future__ import annotations

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from facerecon_jax.aggregation import aggregate
from facerecon_jax.io import cli, export
from facerecon_jax.pipeline import results_page, textured_face
from facerecon_jax.render import renderer


def person_folders(inputs) -> list:
    """Each input is a person's folder, or a folder of person folders."""
    out = []
    for item in inputs:
        p = pathlib.Path(item).expanduser()
        if not p.exists():
            raise cli.UsageError(f"--input {item}: no such folder")
        if not p.is_dir():
            raise cli.UsageError(f"--input {item} is a file; give a person's folder of "
                                 "*_coeffs.npz files (or photos), or a folder of such folders")
        subdirs = sorted(d for d in p.iterdir() if d.is_dir() and d.name != "detections")
        if not list(p.glob("*_coeffs.npz")) and subdirs and not has_images(p):
            out.extend(subdirs)
        else:
            out.append(p)
    return out


def has_images(folder) -> bool:
    """Whether the folder holds photos (pictures facerecon-reconstruct wrote do not count)."""
    from facerecon_jax.pipeline import reconstruct  # noqa: PLC0415
    return next(iter(reconstruct.iter_sources([str(folder)])), None) is not None


def photo_sources(folder) -> list:
    """The photos of a person folder: its images, or else the <name>_input.jpg copies that
    facerecon-reconstruct wrote beside its coefficient files (joint mode refits them)."""
    from facerecon_jax.photo import detection  # noqa: PLC0415
    from facerecon_jax.pipeline import reconstruct  # noqa: PLC0415
    sources = list(reconstruct.iter_sources([str(folder)]))
    if sources:
        return sources
    return [reconstruct.Source(p.name[:-len("_input.jpg")], str(p),
                               lambda p=p: detection.read_image(p))
            for p in sorted(folder.glob("*_input.jpg"))]


def reconstruct_photos(folders, out_dir, model, fit_config, joint: bool, texture_size: int,
                       log=print) -> tuple:
    """Photos of each folder fitted with `fit_config` (configs/reconstruct.py's fields),
    jointly per person (shared identity and albedo) when `joint`: ({person: folder of its
    coefficient files}, number of photos skipped)."""
    from facerecon_jax.fit import fitting  # noqa: PLC0415
    from facerecon_jax.geometry import coefficients  # noqa: PLC0415
    from facerecon_jax.photo import detection, face_embedding  # noqa: PLC0415
    from facerecon_jax.pipeline import reconstruct  # noqa: PLC0415
    c = fit_config.copy_and_resolve_references()
    if joint:
        c.shared = ("id", "tex")
    cfg = fitting.FitConfig.from_config(c)
    layout = coefficients.CoeffLayout.for_model(model, c.light)
    embed = face_embedding.load_face_embedding() if cfg.perceptual else None
    people = [(f.name, photo_sources(f)) for f in folders]
    done, failures = reconstruct.reconstruct_people(
        people, pathlib.Path(out_dir) / "reconstruct", model, layout, cfg, embed,
        batch_size=c.batch_size, joint=joint,
        landmark_map=fitting.landmark_map_for(model, c.landmark_map, c.landmarks),
        detector=detection.FaceDetector(landmarks=c.landmarks),
        texture_size=texture_size, log=log)
    return done, len(failures)


def write_person(out_dir, r: aggregate.PersonResult, model, layout, coeff_dirs) -> dict:
    """One person's files (identity mesh, coefficients, frontal render, texture): its record
    for report.json."""
    m = model.to_jax()
    cfg = renderer.RenderConfig()
    parts = layout.split(jnp.asarray(r.vector)[None])
    verts = renderer.face_vertices(m, parts, cfg.camera)
    base = pathlib.Path(out_dir) / r.name
    export.save_mesh(f"{base}.obj", np.asarray(verts["shape"][0]), model.triangles,
                     np.asarray(verts["albedo"][0]))
    export.save_coefficients(f"{base}_coeffs.npz",
                             {k: np.asarray(v[0]) for k, v in parts.items()},
                             coeffs=np.asarray(r.vector), members=np.array(r.members))
    bg = export.gradient_background(cfg.camera.height, cfg.camera.width)
    img = renderer.render_vertices(m, verts, cfg, jnp.asarray(bg)[None])["image"][0]
    export.save_png(f"{base}.png", np.asarray(img))
    textured = textured_face.write_aggregate(
        base, model, verts, textured_face.member_bases(r.members, r.name, coeff_dirs))
    return {"name": r.name, "images": r.images, "members": r.members, "labels": r.labels,
            "inertia": r.inertia, **textured,
            "files": [f"{base}.obj", f"{base}_coeffs.npz", f"{base}.png"]
            + textured.get("files", [])}


def run(inputs, out_dir, *, mode: str = "auto", fields: str = "identity", n_people=None,
        k=None, n_init: int = 10, seed: int = 0, keep_expression: bool = False,
        model_name: str = "default", fit_config=None, texture_size: int = 1024) -> int:
    """The whole job; returns the exit status (the number of files skipped, at most 100)."""
    from facerecon_jax.models.model_loading import load_face_model  # noqa: PLC0415

    def warn(msg):
        print(msg, file=sys.stderr)
    folders = person_folders(inputs)
    out_dir = cli.output_dir(out_dir)
    model = None
    bad = []               # (file, reason): unreadable coefficient files, skipped
    people = []            # (person name, image names, vectors, layout)
    if mode == "auto":
        mode = "joint" if folders and all(has_images(f) for f in folders) else "per_person"
    coeff_dirs = {f.name: f for f in folders}  # person -> the folder of its *_coeffs.npz
    to_fit = [f for f in folders
              if mode == "joint" or (not aggregate.load_folder(f, [])[0] and has_images(f))]
    skipped = 0
    if to_fit:
        if fit_config is None:
            raise cli.UsageError("photos to fit but no fitting settings given")
        model = load_face_model(model_name)
        warn(f"fitting the photos of {len(to_fit)} folder(s)"
             + (" jointly per person" if mode == "joint" else ""))
        done, skipped = reconstruct_photos(to_fit, out_dir, model, fit_config,
                                           mode == "joint", texture_size, warn)
        coeff_dirs.update(done)
    for folder in folders:
        n_bad = len(bad)
        names, x, layout = aggregate.load_folder(coeff_dirs[folder.name], bad)
        for _, reason in bad[n_bad:]:
            warn(f"skipped {reason}")
        if not names:
            warn(f"skipped {folder}: no *_coeffs.npz files and no faces found")
            continue
        people.append((folder.name, names, x, layout))
    if not people:
        raise cli.UsageError(f"nothing to aggregate in {', '.join(map(str, inputs))}: no "
                             "readable *_coeffs.npz files and no faces found")
    layouts = {p[3] for p in people}
    if len(layouts) > 1:
        warn(f"the folders hold coefficients of different layouts: {layouts}")
        return 1
    layout = people[0][3]
    field_set = aggregate.FIELD_SETS[fields]
    key = jax.random.PRNGKey(seed)
    report = {"mode": mode, "fields": list(field_set), "n_init": n_init, "seed": seed,
              "people": []}
    if mode == "paper":
        names = [f"{p[0]}/{n}" for p in people for n in p[1]]
        truth = [i for i, p in enumerate(people) for _ in p[1]]
        x = np.concatenate([p[2] for p in people])
        n_clusters = n_people or len(people)
        results, labels, inertia = aggregate.cluster_all(
            names, x, layout, n_clusters, fields=field_set, key=key, n_init=n_init,
            keep_expression=keep_expression)
        report.update({"n_people": n_clusters, "inertia": inertia,
                       "assignments": {n: int(c) for n, c in zip(names, labels)}})
        if len(people) > 1:
            from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415
            report["adjusted_rand_index_vs_folders"] = float(adjusted_rand_score(truth, labels))
    else:
        # (joint fits share identity and albedo: their mean is that shared value)
        results = [aggregate.aggregate_person(
            names, x, layout, mode="mean" if mode == "joint" else mode, fields=field_set, k=k,
            key=key, n_init=n_init, keep_expression=keep_expression, person=person)
            for person, names, x, _ in people]
    model = model or load_face_model(model_name)
    if (model.n_id, model.n_exp, model.n_tex) != (layout.n_id, layout.n_exp, layout.n_tex):
        warn(f"the coefficients ({layout}) do not fit the face model {model.info.get('name')}"
             f" ({model.n_id}/{model.n_exp}/{model.n_tex}); pass --model")
        return 1
    for r in results:
        report["people"].append(write_person(out_dir, r, model, layout, coeff_dirs))
        print(f"{r.name}: {len(r.members)} of {len(r.images)} images -> {out_dir / r.name}.obj")
    report["skipped_files"] = [{"file": f, "error": e} for f, e in bad]
    export.write_text(out_dir / "report.json", json.dumps(report, indent=2))
    results_page.write_aggregate_page(out_dir, report, {
        r.name: textured_face.member_bases(r.images, r.name, coeff_dirs) for r in results})
    print(f"results page: {(out_dir / 'index.html').resolve().as_uri()}")
    if "adjusted_rand_index_vs_folders" in report:
        print(f"clusters vs folders: adjusted Rand index "
              f"{report['adjusted_rand_index_vs_folders']:.3f}")
    for f, reason in bad:
        print(f"SKIPPED {f}: {reason}")
    if skipped:
        warn(f"{skipped} photo(s) skipped (unreadable or no face)")
    return min(len(bad) + skipped, 100)
