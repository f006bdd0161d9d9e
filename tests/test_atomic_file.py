"""Atomic writes: files honour the umask like `open(path, "w")`; killed writers' temporaries
are found (issue 11, item 6)."""
import os
import stat

import numpy as np
import pytest

from facerecon_jax.io import atomic_file, export
from facerecon_jax.models import face_model


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o640
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_honour_the_umask(tmp_path, umask_027, small_grid):
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as f:       # the independent expectation: what open() makes
        f.write("x")
    assert _mode(plain) == umask_027
    tri = np.array([[0, 1, 2]])
    v = np.eye(3, dtype=np.float32)
    written = [
        export.save_mesh(tmp_path / "m.obj", v, tri, np.ones((3, 3))),
        export.save_png(tmp_path / "p.png", np.zeros((4, 4, 3))),
        export.save_coefficients(tmp_path / "c_coeffs.npz", {"id": np.zeros(3)}),
        export.write_text(tmp_path / "t.json", "{}"),
        face_model.save(small_grid, tmp_path / "cache" / "model.npz"),
        atomic_file.write_bytes(tmp_path / "b.bin", b"123"),
    ]
    for p in written:
        assert _mode(p) == _mode(plain), p
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_stale_temporaries_of_ended_writers(tmp_path):
    live = tmp_path / atomic_file.temporary_name("a.obj")             # this process: running
    dead = tmp_path / ".a.obj.999999999.0123abcd.tmp"                  # no such process
    old_style = tmp_path / ".b.pngk2j_x9q1.tmp"                        # tempfile.mkstemp naming
    other = tmp_path / ".notes.txt.999999999.0123abcd.tmp"             # not ours to remove
    for p in (live, dead, old_style, other):
        p.write_bytes(b"")
    stale = list(atomic_file.stale_temporaries(tmp_path, lambda t: t.endswith((".obj", ".png"))))
    assert sorted(stale) == sorted([dead, old_style])
