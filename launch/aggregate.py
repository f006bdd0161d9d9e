"""One face per person from many images (the paper's multi-image reconstruction).

  facerecon-aggregate --input people/ --output_dir faces/                 # joint fit (photos)
  facerecon-aggregate --input people/ --mode per_person --output_dir faces/  # k-means per person
  facerecon-aggregate --input people/ --mode paper --output_dir faces/   # identities unknown
  facerecon-aggregate --input alice/ --input bob/ --mode mean ...        # baseline

Each input is a person's folder, or a folder of person folders. A person folder holds photos,
or the <name>_coeffs.npz files that facerecon-reconstruct writes (with its <name>_input.jpg).
Joint mode (the default when the folders hold photos) fits all photos of a person in one
optimisation: one identity and albedo per person, pose, expression and light per photo. The
other modes aggregate per-photo coefficients; photos are reconstructed first (into
<output_dir>/reconstruct/<person>/), coefficient files are used as they are. In paper mode
all vectors are pooled and clustered with K = --n_people (default: the number of person folders), and the
report says which image went to which cluster (and, when the folders name people, how well the
clusters match them: adjusted Rand index).

Per person: <person>.obj (identity mesh: neutral expression, frontal, albedo colours),
<person>_coeffs.npz, <person>.png (a frontal render), the person's texture (the members'
<name>_texture.png averaged with their <name>_texture_weight.png) with <person>_textured.obj/.mtl
and <person>.glb; report.json and index.html (the results page: each person in 3D, its images
and their cluster labels).
A coefficient file that cannot be read, or a photo with no face, is named and skipped, the rest
are aggregated; the exit status is the number of such files (0 when all were good).
"""
import json
import pathlib
import sys

from absl import flags, logging

from facerecon_jax import cli

_CONFIG = cli.define_config(
    "facerecon-aggregate", str(pathlib.Path(__file__).parent.parent / "configs" / "reconstruct.py"),
    "Fitting settings for photos (configs/reconstruct.py; override with --config.steps=200 etc).")
_INPUT = flags.DEFINE_multi_string("input", None, "Person folders, or a folder of them.")
_OUT = flags.DEFINE_string("output_dir", "faces", "Where to write the results.")
_MODE = flags.DEFINE_enum("mode", "auto", ["auto", "joint", "paper", "per_person", "mean",
                                          "median"],
                          "Aggregation mode; auto: joint when the folders hold photos, else "
                          "per_person.")
_FIELDS = flags.DEFINE_enum("fields", "identity", ["identity", "all", "shape"],
                            "Which parts of the vector are clustered: identity+texture, all, "
                            "or identity only.")
_N_PEOPLE = flags.DEFINE_integer("n_people", None, "Paper mode: K (default: person folders).")
_K = flags.DEFINE_integer("k", None, "Per-person mode: clusters inside a person "
                                     "(default 2 with 4+ images, else 1).")
_N_INIT = flags.DEFINE_integer("n_init", 10, "k-means restarts (vmapped).")
_SEED = flags.DEFINE_integer("seed", 0, "k-means key.")
_KEEP_EXP = flags.DEFINE_bool("keep_expression", False,
                              "Keep the mean expression and pose instead of neutral.")
_MODEL = flags.DEFINE_string("model", "default", "Face model the coefficients belong to.")
_TEXTURE_SIZE = flags.DEFINE_integer("texture_size", 1024,
                                     "Texture map size of faces fitted from photos.")
flags.mark_flag_as_required("input")

TOOL = cli.Tool("facerecon-aggregate", __doc__, {
    "steps": "steps of the hybrid-loss stage when fitting photos",
    "steps_landmark": "steps of the landmark-only stage before it",
    "batch_size": "photos fitted together",
    "light": "rgb (27 SH coefficients) or mono (9, the paper's)",
})


def _person_folders(inputs):
    out = []
    for item in inputs:
        p = pathlib.Path(item).expanduser()
        if not p.exists():
            raise cli.UsageError(f"--input {item}: no such folder")
        if not p.is_dir():
            raise cli.UsageError(f"--input {item} is a file; give a person's folder of "
                                 "*_coeffs.npz files (or photos), or a folder of such folders")
        subdirs = sorted(d for d in p.iterdir() if d.is_dir() and d.name != "detections")
        if not list(p.glob("*_coeffs.npz")) and subdirs and not _has_images(p):
            out.extend(subdirs)
        else:
            out.append(p)
    return out


def _has_images(folder):
    from facerecon_jax.reconstruct import IMAGE_SUFFIXES
    return any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir() if f.is_file())


def _photo_sources(folder):
    """The photos of a person folder: images, or the <name>_input.jpg copies beside
    facerecon-reconstruct's coefficient files."""
    from facerecon_jax import reconstruct
    sources = [src for src in reconstruct.iter_sources([str(folder)])
               if not src.name.endswith(("_input", "_overlay", "_pasted", "_texture",
                                         "_texture_weight"))]
    if sources:
        return sources
    inputs = sorted(folder.glob("*_input.jpg"))
    return [src for src in reconstruct.iter_sources([str(p) for p in inputs])
            for src in [_renamed(src, src.name[:-len("_input")])]]


def _renamed(src, name):
    src.name = name
    return src


def _reconstruct(folders, out_dir, model, joint):
    """Photos of each folder fitted with --config's settings (jointly per person
    in joint mode): {person: folder of its coefficient files}, number of photos skipped."""
    from facerecon_jax import coefficients, face_embedding, fitting, reconstruct
    c = _CONFIG.value.copy_and_resolve_references()
    if joint:
        c.shared = ("id", "tex")
    cfg = fitting.FitConfig.from_config(c)
    layout = coefficients.CoeffLayout.for_model(model, c.light)
    embed = face_embedding.load_face_embedding() if cfg.perceptual else None
    people = [(f.name, _photo_sources(f)) for f in folders]
    done, failures = reconstruct.reconstruct_people(
        people, out_dir / "reconstruct", model, layout, cfg, embed, batch_size=c.batch_size,
        joint=joint, landmark_map=fitting.landmark_map_for(model, c.landmark_map),
        texture_size=_TEXTURE_SIZE.value,
        log=lambda m: print(m, file=sys.stderr))
    return done, len(failures)


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp
    import numpy as np

    from facerecon_jax import aggregate, export, renderer, results_page, textured_face
    from facerecon_jax.model_loading import load_face_model

    folders = _person_folders(_INPUT.value)
    out_dir = cli.output_dir(_OUT.value)
    model = None
    bad = []               # (file, reason): unreadable coefficient files, skipped
    people = []            # (person name, image names, vectors, layout)
    mode = _MODE.value
    if mode == "auto":
        mode = "joint" if folders and all(_has_images(f) for f in folders) else "per_person"
    coeff_dirs = {f.name: f for f in folders}  # person -> the folder of its *_coeffs.npz
    to_fit = [f for f in folders
              if mode == "joint" or (not aggregate.load_folder(f, [])[0] and _has_images(f))]
    skipped = 0
    if to_fit:
        model = load_face_model(_MODEL.value)
        logging.info("fitting the photos of %d folder(s)%s", len(to_fit),
                     " jointly per person" if mode == "joint" else "")
        done, skipped = _reconstruct(to_fit, out_dir, model, joint=mode == "joint")
        coeff_dirs.update(done)
    for folder in folders:
        n_bad = len(bad)
        names, x, layout = aggregate.load_folder(coeff_dirs[folder.name], bad)
        for f, reason in bad[n_bad:]:
            print(f"skipped {reason}", file=sys.stderr)
        if not names:
            print(f"skipped {folder}: no *_coeffs.npz files and no faces found", file=sys.stderr)
            continue
        people.append((folder.name, names, x, layout))
    if not people:
        raise cli.UsageError(f"nothing to aggregate in {', '.join(_INPUT.value)}: no readable "
                             "*_coeffs.npz files and no faces found")
    layouts = {p[3] for p in people}
    if len(layouts) > 1:
        print(f"the folders hold coefficients of different layouts: {layouts}", file=sys.stderr)
        return 1
    layout = people[0][3]
    fields = aggregate.FIELD_SETS[_FIELDS.value]
    key = jax.random.PRNGKey(_SEED.value)
    report = {"mode": mode, "fields": list(fields), "n_init": _N_INIT.value,
              "seed": _SEED.value, "people": []}
    if mode == "paper":
        names = [f"{p[0]}/{n}" for p in people for n in p[1]]
        truth = [i for i, p in enumerate(people) for _ in p[1]]
        x = np.concatenate([p[2] for p in people])
        k = _N_PEOPLE.value or len(people)
        results, labels, inertia = aggregate.cluster_all(
            names, x, layout, k, fields=fields, key=key, n_init=_N_INIT.value,
            keep_expression=_KEEP_EXP.value)
        report.update({"n_people": k, "inertia": inertia,
                       "assignments": {n: int(c) for n, c in zip(names, labels)}})
        if len(people) > 1:
            from sklearn.metrics import adjusted_rand_score
            report["adjusted_rand_index_vs_folders"] = float(adjusted_rand_score(truth, labels))
    else:
        results = [aggregate.aggregate_person(
            # (joint fits share identity and albedo: their mean is that shared value)
            names, x, layout, mode="mean" if mode == "joint" else mode, fields=fields, k=_K.value, key=key,
            n_init=_N_INIT.value, keep_expression=_KEEP_EXP.value, person=person)
            for person, names, x, _ in people]
    model = model or load_face_model(_MODEL.value)
    if (model.n_id, model.n_exp, model.n_tex) != (layout.n_id, layout.n_exp, layout.n_tex):
        print(f"the coefficients ({layout}) do not fit the face model {model.info.get('name')}"
              f" ({model.n_id}/{model.n_exp}/{model.n_tex}); pass --model", file=sys.stderr)
        return 1
    m = model.to_jax()
    cfg = renderer.RenderConfig()
    for r in results:
        xv = jnp.asarray(r.vector)[None]
        parts = layout.split(xv)
        verts = renderer.face_vertices(m, parts, cfg.camera)
        base = out_dir / r.name
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
        report["people"].append({"name": r.name, "images": r.images, "members": r.members,
                                 "labels": r.labels, "inertia": r.inertia, **textured,
                                 "files": [f"{base}.obj", f"{base}_coeffs.npz", f"{base}.png"]
                                 + textured.get("files", [])})
        print(f"{r.name}: {len(r.members)} of {len(r.images)} images -> {base}.obj")
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
        print(f"{skipped} photo(s) skipped (unreadable or no face)", file=sys.stderr)
    return min(len(bad) + skipped, 100)


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
