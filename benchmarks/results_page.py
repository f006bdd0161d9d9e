"""Results page: load time in headless Chromium and output size per face.

  facerecon-example-photos --output_dir photos
  facerecon-reconstruct --input photos --output_dir out
  python benchmarks/results_page.py --source out [--faces 20] [--runs 3]

Builds a `--faces`-face reconstruct folder from the faces in `--source` (their files copied
round-robin under new names, e.g. face07_grace_hopper_*), writes its index.html with
`results_page.write_reconstruct_page`, and opens it from file:// in a fresh headless Chromium
`--runs` times. Load time: from the start of navigation to the first face drawn by the 3D
viewer (the page's own clock, `data-viewer-first-render-ms`), and the browser's load event
(every script and the images above the fold); then the time to show the last face in 3D (its
model data loaded and parsed on demand). Sizes: the files of one face (the reconstruct outputs
and its viewer data) and the viewer files the page shares. The last line is JSON.
"""
import argparse
import json
import pathlib
import shutil
import statistics
import tempfile
import time

from facerecon_jax.io import browser
from facerecon_jax.pipeline import results_page

SUFFIXES = (".obj", "_albedo.obj", "_coeffs.npz", "_lm68.txt", "_overlay.png", "_pasted.png",
            "_input.jpg", "_texture.png", "_texture_weight.png", "_textured.obj",
            "_textured.mtl", ".glb")


def build(source: pathlib.Path, work: pathlib.Path, n: int) -> list:
    report = json.loads((source / "report.json").read_text())
    faces = report["faces"]
    if not faces:
        raise SystemExit(f"{source}/report.json lists no faces")
    out = []
    for k in range(n):
        f = faces[k % len(faces)]
        name = f"face{k:02d}_{f['name']}"
        for suffix in SUFFIXES:
            src = source / f"{f['name']}{suffix}"
            if src.exists():
                shutil.copyfile(src, work / f"{name}{suffix}")
        mtl = work / f"{name}_textured.mtl"
        if mtl.exists():
            mtl.write_text(mtl.read_text().replace(f"{f['name']}_texture.png",
                                                   f"{name}_texture.png"))
        obj = work / f"{name}_textured.obj"
        if obj.exists():
            obj.write_text(obj.read_text().replace(f"{f['name']}_textured.mtl",
                                                   f"{name}_textured.mtl"))
        out.append(dict(f, name=name))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, help="a facerecon-reconstruct output folder")
    ap.add_argument("--faces", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=None, help="where to build the page (default: a temp dir)")
    args = ap.parse_args()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="results_page_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    faces = build(pathlib.Path(args.source), work, args.faces)
    t0 = time.perf_counter()
    results_page.write_reconstruct_page(work, {"faces": faces, "failed": []})
    write_s = time.perf_counter() - t0

    first, load, last = [], [], []
    last_name = faces[-1]["name"]
    for _ in range(args.runs):
        with browser.Chromium(1280, 900) as b:
            b.open(work / "index.html")
            state = b.wait_for("document.body && ['rendered', 'error']"
                               ".includes(document.body.dataset.viewer) "
                               "&& document.body.dataset.viewer", timeout=120)
            if state != "rendered" or b.errors:
                raise SystemExit(f"the viewer did not render: {state}, {b.errors}")
            first.append(float(b.evaluate("document.body.dataset.viewerFirstRenderMs")))
            b.wait_for("document.readyState === 'complete'", timeout=120)
            load.append(float(b.evaluate(
                "performance.getEntriesByType('navigation')[0].loadEventEnd")))
            t = b.evaluate("performance.now()")
            b.evaluate(f"document.querySelector('[data-show=\"{last_name}\"]').click()")
            b.wait_for(f"document.body.dataset.viewerFace === '{last_name}' && "
                       f"document.body.dataset.viewer === 'rendered'", timeout=120)
            last.append(float(b.evaluate("performance.now()")) - float(t))
            if b.errors:
                raise SystemExit(f"console errors: {b.errors}")

    def size(paths):
        return sum(p.stat().st_size for p in paths if p.exists())
    per_face = [size([work / f"{f['name']}{s}" for s in SUFFIXES]
                     + [work / "viewer" / "data" / f"{f['name']}.js"]) for f in faces]
    shared = size([work / "index.html"] + [work / "viewer" / n
                                           for n in results_page.VIEWER_FILES])
    by_kind = {s: size([work / f"{faces[0]['name']}{s}"]) for s in SUFFIXES}
    by_kind["viewer data .js"] = size([work / "viewer" / "data" / f"{faces[0]['name']}.js"])
    res = {"faces": args.faces, "runs": args.runs, "page_write_s": round(write_s, 3),
           "first_face_drawn_ms": statistics.median(first), "load_event_ms":
           statistics.median(load), "show_last_face_ms": statistics.median(last),
           "first_face_drawn_ms_all": first, "mb_per_face": round(statistics.mean(per_face) / 1e6,
                                                                 2),
           "shared_mb": round(shared / 1e6, 2),
           "first_face_files_kb": {k: round(v / 1e3) for k, v in by_kind.items()},
           "work": str(work)}
    print(f"| {args.faces} faces | first face drawn {res['first_face_drawn_ms']:.0f} ms | "
          f"load event {res['load_event_ms']:.0f} ms | last face shown "
          f"{res['show_last_face_ms']:.0f} ms | {res['mb_per_face']} MB per face + "
          f"{res['shared_mb']} MB shared |")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
