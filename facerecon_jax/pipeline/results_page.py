"""The results page: `index.html` in a reconstruct or aggregate output folder.

Per face: the input photo, the overlay, the paste-back, the landmark error and texture PSNR, and
a 3D view (three.js: drag to rotate, wheel to zoom, textured / shape-only shading); per person
(aggregate): the aggregate face in 3D, its render, and each member image with its cluster label.

It opens from the file system with no network: three.js r147 (MIT) and its classic-script
OrbitControls and GLTFLoader ship in this package (`facerecon_jax/pipeline/viewer/`, see
third_party/README.md) and are copied beside the page into `viewer/`, with our page script
(`results_viewer.js`) and style. Browsers block ES modules and fetch() from file:// pages, so
everything is a classic script, and each face's .glb is handed over as base64 in
`viewer/data/<name>.js` (a script that registers it), loaded when the face is first shown.
"""
from __future__ import annotations

import base64
import html
import json
import math
import pathlib
import shutil
import urllib.parse
from typing import Dict, Optional, Sequence

import numpy as np
from PIL import Image

from facerecon_jax.io import atomic_file

VIEWER_SOURCE = pathlib.Path(__file__).resolve().parent / "viewer"
VIEWER_FILES = ("three.min.js", "OrbitControls.js", "GLTFLoader.js", "LICENSE-three.txt",
                "results_viewer.js", "results.css")
LIBRARY_SCRIPTS = ("three.min.js", "OrbitControls.js", "GLTFLoader.js")


def _write_text(path, text: str) -> pathlib.Path:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return atomic_file.write(pathlib.Path(path), write)


def copy_viewer(out_dir) -> pathlib.Path:
    """The viewer's files into `<out_dir>/viewer/`."""
    dest = pathlib.Path(out_dir) / "viewer"
    for name in VIEWER_FILES:
        src = VIEWER_SOURCE / name
        if not src.exists():
            raise FileNotFoundError(f"{src} is missing: the package was installed without its "
                                    "viewer files; reinstall it: pip install -e .")
        atomic_file.write(dest / name, lambda tmp, src=src: shutil.copyfile(src, tmp))
    return dest


def _url(path: str) -> str:
    return urllib.parse.quote(path)


def write_model_data(out_dir, key: str, glb_path) -> str:
    """`viewer/data/<key>.js`: the .glb as base64, registered under `key`; returns its URL
    relative to the page."""
    data = base64.b64encode(pathlib.Path(glb_path).read_bytes()).decode("ascii")
    rel = f"viewer/data/{key}.js"
    _write_text(pathlib.Path(out_dir) / rel,
                f"FaceReconViewer.register({json.dumps(key)}, \"{data}\");\n")
    return _url(rel)


def save_input_image(path, image, max_side: int = 800) -> pathlib.Path:
    """The input photo for the page, as JPEG, at most `max_side` pixels on its longer side."""
    img = Image.fromarray(np.asarray(image, np.uint8))
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    return atomic_file.write(pathlib.Path(path),
                             lambda tmp: img.save(tmp, format="JPEG", quality=88))


def save_thumbnail(src, dest, height: int = 120) -> Optional[pathlib.Path]:
    """A small JPEG of an image (for member lists); None when `src` is missing."""
    src = pathlib.Path(src)
    if not src.exists():
        return None
    img = Image.open(src).convert("RGB")
    img = img.resize((max(1, round(img.width * height / img.height)), height),
                     Image.Resampling.LANCZOS)
    return atomic_file.write(pathlib.Path(dest),
                             lambda tmp: img.save(tmp, format="JPEG", quality=85))


def _fmt(value, spec: str, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:{spec}}{unit}"


def _figure(src: str, caption: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<figure{c}><img src="{html.escape(_url(src))}" alt="{html.escape(caption)}" '
            f'loading="lazy"><figcaption>{html.escape(caption)}</figcaption></figure>')


def _viewer_box(key: str, caption: str) -> str:
    k = html.escape(key)
    return (f'<figure><div class="viewer" id="viewer-{k}"><button type="button" class="show3d" '
            f'data-show="{k}">view in 3D</button></div><figcaption>{html.escape(caption)}'
            f'</figcaption></figure>')


def _page(title: str, header: str, cards: Sequence[str], faces: Sequence[dict]) -> str:
    data = json.dumps({"faces": list(faces)}).replace("</", "<\\/")
    scripts = "\n".join(f'<script src="viewer/{s}"></script>' for s in LIBRARY_SCRIPTS)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="viewer/results.css">
</head>
<body>
<header>{header}</header>
<main>
{chr(10).join(cards)}
</main>
<script>window.FACERECON_PAGE = {data};</script>
{scripts}
<script src="viewer/results_viewer.js"></script>
</body>
</html>
"""


VIEW_HELP = "3D: drag to rotate, wheel to zoom"


def write_reconstruct_page(out_dir, report: dict) -> pathlib.Path:
    """index.html for a facerecon-reconstruct folder from its report ({faces, failed})."""
    out_dir = pathlib.Path(out_dir)
    copy_viewer(out_dir)
    faces = report.get("faces", [])
    failed = report.get("failed", [])
    cards, viewer_faces = [], []
    for r in faces:
        name = r["name"]
        figs = []
        glb = out_dir / f"{name}.glb"
        if glb.exists():
            viewer_faces.append({"key": name, "title": name,
                                 "data": write_model_data(out_dir, name, glb)})
            figs.append(_viewer_box(name, VIEW_HELP))
        for suffix, caption in (("_input.jpg", "input"), ("_pasted.png", "paste-back"),
                                ("_overlay.png", "crop | fit | landmarks (detected green, "
                                 "fitted red)")):
            if (out_dir / f"{name}{suffix}").exists():
                figs.append(_figure(f"{name}{suffix}", caption))
        texture = r.get("texture")
        metrics = (f'landmark error <b>{_fmt(r.get("landmark_error_nme"), ".4f")}</b> (NME) '
                   f'&middot; texture PSNR <b>{_fmt(r.get("texture_psnr_db"), ".1f", " dB")}</b>'
                   f'{" (" + html.escape(texture) + " texture)" if texture else ""} '
                   f'&middot; model colours {_fmt(r.get("render_psnr_db"), ".1f", " dB")}')
        cards.append(f'<section class="card" id="face-{html.escape(name)}">'
                     f'<h2>{html.escape(name)}</h2><div class="metrics">{metrics}</div>'
                     f'<div class="row">{"".join(figs)}</div></section>')
    if failed:
        rows = "".join(f"<tr><td>{html.escape(str(f.get('source')))}</td>"
                       f"<td>{html.escape(str(f.get('error')))}</td></tr>" for f in failed)
        cards.append(f'<section class="card"><h2>Failed inputs</h2>'
                     f'<table class="failed">{rows}</table></section>')
    nme = [r["landmark_error_nme"] for r in faces if r.get("landmark_error_nme") is not None]
    psnr = [r["texture_psnr_db"] for r in faces if r.get("texture_psnr_db") is not None]
    header = (f"<h1>facerecon-reconstruct: {len(faces)} face{'s' * (len(faces) != 1)}</h1>"
              f"<p>{len(failed)} input{'s' * (len(failed) != 1)} failed"
              f" &middot; mean landmark error {_fmt(np.mean(nme) if nme else None, '.4f')}"
              f" &middot; mean texture PSNR {_fmt(np.mean(psnr) if psnr else None, '.1f', ' dB')}"
              f"</p><p>Landmark error: mean 68-point distance over the inter-ocular distance. "
              f"Texture PSNR: the textured mesh redrawn with the fitted camera against the "
              f"photo's aligned crop, over skin pixels.</p>")
    page = _page(f"facerecon results: {len(faces)} faces", header, cards, viewer_faces)
    return _write_text(out_dir / "index.html", page)


def write_aggregate_page(out_dir, report: dict,
                         member_bases: Dict[str, Dict[str, pathlib.Path]]) -> pathlib.Path:
    """index.html for a facerecon-aggregate folder from its report ({mode, people: [{name,
    images, members, labels}]}); `member_bases[person][image]` is where that image's reconstruct
    outputs live (folder / stem), for thumbnails of their overlays."""
    out_dir = pathlib.Path(out_dir)
    copy_viewer(out_dir)
    cards, viewer_faces = [], []
    assignments = report.get("assignments", {})
    for p in report.get("people", []):
        name = p["name"]
        figs = []
        if (out_dir / f"{name}.png").exists():
            figs.append(_figure(f"{name}.png", "aggregate face (albedo, frontal)"))
        glb = out_dir / f"{name}.glb"
        if glb.exists():
            viewer_faces.append({"key": name, "title": name,
                                 "data": write_model_data(out_dir, name, glb)})
            figs.append(_viewer_box(name, VIEW_HELP))
        members = set(p.get("members", []))
        labels = p.get("labels")
        items = []
        for i, image in enumerate(p.get("images", [])):
            if labels is not None:
                label = f"cluster {labels[i]}"
            elif image in assignments:
                label = f"cluster {assignments[image]}"
            else:
                label = ""
            used = image in members
            base = member_bases.get(name, {}).get(image)
            thumb = None
            if base is not None:
                safe = image.replace("/", "__")
                thumb = save_thumbnail(f"{base}_overlay.png",
                                       out_dir / "members" / name / f"{safe}.jpg")
            img = (f'<img src="{html.escape(_url(thumb.relative_to(out_dir).as_posix()))}" '
                   f'alt="{html.escape(image)}" loading="lazy">' if thumb else "")
            cls = "member" if used else "member outlier"
            badge = f'<span class="badge">{html.escape(label)}{"" if used else ", not used"}' \
                    f'</span>' if label or not used else ""
            items.append(f'<figure class="{cls} wide">{img}<figcaption>{html.escape(image)}'
                         f'{badge}</figcaption></figure>')
        extra = ""
        if p.get("texture_members") is not None:
            extra = (f' &middot; texture from {p["texture_members"]} image'
                     f'{"s" * (p["texture_members"] != 1)}, '
                     f'{100 * p.get("texture_seen_fraction", 0):.0f}% of texels seen')
        metrics = (f'{len(members)} of {len(p.get("images", []))} images used'
                   f'{extra}')
        cards.append(f'<section class="card" id="person-{html.escape(name)}">'
                     f'<h2>{html.escape(name)}</h2><div class="metrics">{metrics}</div>'
                     f'<div class="row">{"".join(figs)}</div>'
                     f'<h3>Images</h3><div class="members">{"".join(items)}</div></section>')
    people = report.get("people", [])
    header = (f"<h1>facerecon-aggregate: {len(people)} "
              f"{'person' if len(people) == 1 else 'people'}</h1>"
              f"<p>mode {html.escape(str(report.get('mode')))} &middot; fields "
              f"{html.escape(', '.join(report.get('fields', [])))}"
              + (f" &middot; adjusted Rand index vs folders "
                 f"{report['adjusted_rand_index_vs_folders']:.3f}"
                 if "adjusted_rand_index_vs_folders" in report else "")
              + "</p><p>Thumbnails: each image's crop | fit | landmarks; faded: left out of the "
                "aggregate (another cluster).</p>")
    page = _page(f"facerecon aggregate: {len(people)} people", header, cards, viewer_faces)
    return _write_text(out_dir / "index.html", page)
