"""The folder `facerecon-reconstruct` writes into: what is ours, what is done, what to call a face.

* **Checked first.** :func:`check_writable` runs before any work: a file where the folder should
  be, or a folder that cannot be written, is one :class:`OutputFolderError` naming it.
* **Outputs are never inputs.** A picture the tool wrote (``<name>_overlay.png``,
  ``_pasted.png``, ``_input.jpg``, ``_texture.png``, ``_texture_weight.png``) is recognised by
  name (such a suffix with the face's ``<name>_coeffs.npz`` beside it) and by the folder's
  manifest (``report.json``: every file of every face); a fitted ``<name>_lm68.txt`` (it starts
  with :data:`FITTED_HEADER`, has the face's ``_coeffs.npz`` beside it, or is in the manifest)
  is never taken as given landmarks.
* **One record per face.** :func:`merge_report` keeps the faces of earlier runs, replaces those
  redone, and keeps a face when its input fails this time; the report is written atomically.
* **Done is done.** :func:`complete_sources`: inputs whose faces all have every file present are
  skipped unless ``--overwrite``. :func:`remove_stale_temporaries` removes what a killed run left.
* **Distinct names.** :func:`assign_names`: inputs sharing a stem (``x.jpg``, ``x.png``) get
  ``x_jpg`` / ``x_png`` (or ``x_2``, ...), also against faces of earlier runs from other inputs.
"""
from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterable, Sequence

from facerecon_jax.io import atomic_file, cli

REPORT = "report.json"
PICTURE_SUFFIXES = ("_overlay.png", "_pasted.png", "_input.jpg", "_texture_weight.png",
                    "_texture.png")
FACE_SUFFIXES = (".obj", "_albedo.obj", "_coeffs.npz", "_lm68.txt", ".glb", "_textured.obj",
                 "_textured.mtl") + PICTURE_SUFFIXES
RUN_FILES = (REPORT, "index.html")
FITTED_HEADER = "# fitted by facerecon-reconstruct (not detected landmarks)"


class OutputFolderError(cli.UsageError):
    """The output folder cannot be used; the message names it and says why."""


def check_writable(folder, flag: str = "--output_dir") -> pathlib.Path:
    """The folder, if it is (or can be made) a folder this process can write into; else
    :class:`OutputFolderError`. Nothing is created: the nearest existing ancestor is probed."""
    folder = pathlib.Path(folder).expanduser()
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise OutputFolderError(f"{flag} {folder}: {probe} is a broken link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == folder else f"cannot be made: {probe} is a file"
        raise OutputFolderError(f"{flag} {folder} {what}; give a folder")
    tmp = probe / atomic_file.temporary_name("write-test")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputFolderError(f"{flag} {folder}: cannot write into {probe} "
                                f"({e.strerror or e})") from None
    return folder


def read_report(folder) -> dict:
    """The folder's report.json ({faces, failed}); empty when there is none. An unreadable one
    is moved aside to report.json.unreadable (nothing is lost) and an empty report returned."""
    path = pathlib.Path(folder) / REPORT
    if not path.is_file():
        return {"faces": [], "failed": []}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        ok = isinstance(report.get("faces"), list)
    except (ValueError, OSError, AttributeError):
        ok = False
    if not ok:
        os.replace(path, path.with_name(REPORT + ".unreadable"))
        return {"faces": [], "failed": []}
    report.setdefault("failed", [])
    return report


def source_key(source: str) -> str:
    """An input's identity across runs: its absolute path (a video frame keeps its #frame)."""
    path, sep, frame = str(source).partition("#")
    return os.path.abspath(os.path.expanduser(path)) + sep + frame


def merge_report(old: dict, results: Sequence[dict], failures: Sequence[dict],
                 attempted: Iterable[str]) -> dict:
    """One record per face: this run's faces replace faces of the same name and, for an input
    that gave faces now, that input's earlier faces; faces of inputs that failed or were not
    tried this run stay. Failures: this run's, and earlier ones of inputs not tried now."""
    redone = {source_key(r["source"]) for r in results}
    new_names = {r["name"] for r in results}
    attempted = {source_key(s) for s in attempted}
    faces = [f for f in old.get("faces", []) if f.get("name") not in new_names
             and source_key(f.get("source", "")) not in redone]
    faces = sorted(faces + list(results), key=lambda f: f["name"])
    failed = [f for f in old.get("failed", [])
              if source_key(f.get("source", "")) not in attempted] + list(failures)
    return {**{k: v for k, v in old.items() if k not in ("faces", "failed")},
            "faces": faces, "failed": failed}


def write_report(folder, report: dict) -> pathlib.Path:
    return atomic_file.write_text(pathlib.Path(folder) / REPORT, json.dumps(report, indent=2))


def manifest(folder) -> set[str]:
    """Names of the files the folder's report says the tool wrote (without reading damage:
    an unreadable report gives an empty set)."""
    path = pathlib.Path(folder) / REPORT
    try:
        faces = json.loads(path.read_text(encoding="utf-8")).get("faces", [])
        return {pathlib.Path(f).name for face in faces for f in face.get("files", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


class OutputIndex:
    """Answers "did facerecon-reconstruct write this file?" for files in any folder (the
    folder's manifest is read once)."""

    def __init__(self):
        self._manifests: dict[pathlib.Path, set[str]] = {}

    def _manifest(self, folder: pathlib.Path) -> set[str]:
        key = folder.resolve()
        if key not in self._manifests:
            self._manifests[key] = manifest(folder)
        return self._manifests[key]

    def is_output_picture(self, path) -> bool:
        p = pathlib.Path(path)
        if p.name in self._manifest(p.parent):
            return True
        for suffix in PICTURE_SUFFIXES:
            if p.name.endswith(suffix):
                base = p.name[: -len(suffix)]
                if base and (p.parent / f"{base}_coeffs.npz").is_file():
                    return True
        return False

    def is_fitted_landmarks(self, path) -> bool:
        p = pathlib.Path(path)
        if p.name in self._manifest(p.parent):
            return True
        if p.name.endswith("_lm68.txt"):
            base = p.name[: -len("_lm68.txt")]
            if (p.parent / f"{base}_coeffs.npz").is_file():
                return True
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                return f.readline().startswith(FITTED_HEADER[:20])
        except OSError:
            return False


def is_our_file(name: str) -> bool:
    """Whether a file name is one the tool writes (per face or per run)."""
    return name in RUN_FILES or name.endswith(FACE_SUFFIXES)


def remove_stale_temporaries(folder) -> list[pathlib.Path]:
    """Delete the temporaries an interrupted run left in the folder (only of the tool's own
    files, only of writers that have ended); returns them."""
    stale = list(atomic_file.stale_temporaries(folder, is_our_file))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def complete_sources(folder, report: dict) -> set[str]:
    """Source keys of inputs whose faces in the report all have every file present."""
    folder = pathlib.Path(folder)
    faces = report.get("faces", [])
    owner = {f.get("name"): source_key(f.get("source", "")) for f in faces}   # the last wins
    by_source: dict[str, bool] = {}
    for face in faces:
        key = source_key(face.get("source", ""))
        files = face.get("files") or []
        ok = (bool(files) and owner[face.get("name")] == key   # not overwritten by a namesake
              and all((folder / pathlib.Path(f).name).is_file() for f in files))
        by_source[key] = by_source.get(key, True) and ok
    return {k for k, ok in by_source.items() if ok}


def assign_names(sources: Sequence, taken: dict[str, str] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
    """Give every source (objects with .name and .path, renamed in place) a distinct output
    name. Sources sharing a name get ``<stem>_<ext>`` when their extensions differ, else
    ``<stem>_2``, ``<stem>_3`` in order; `taken` (name -> source key of faces already in the
    folder) keeps a name that belongs to another input from being reused. `say` is told of
    every rename."""
    taken = dict(taken or {})
    groups: dict[str, list] = {}
    for s in sources:
        groups.setdefault(s.name, []).append(s)
    used = {s.name for s in sources}
    for name, group in groups.items():
        owner = taken.get(name)
        clash = len(group) > 1 or (owner is not None and owner != source_key(group[0].path))
        if not clash:
            continue
        exts = [pathlib.Path(str(s.path).partition("#")[0]).suffix.lower().lstrip(".")
                for s in group]
        by_ext = len(set(exts)) == len(exts) and all(exts)
        renamed = []
        for k, (s, ext) in enumerate(zip(group, exts)):
            if owner == source_key(s.path) or (owner is None and k == 0 and not by_ext):
                continue           # keeps its name: it had it before, or is the first
            cand = f"{name}_{ext}" if by_ext else f"{name}_{k + 1}"
            n = 2
            while cand in used or (cand in taken and taken[cand] != source_key(s.path)):
                cand = f"{name}_{ext or 'x'}{n}" if by_ext else f"{name}_{k + n}"
                n += 1
            used.add(cand)
            s.name = cand
            renamed.append(f"{s.path} -> {cand}")
        if renamed and say is not None:
            say(f"inputs share the name {name!r}; written under distinct names: "
                + ", ".join(renamed))
