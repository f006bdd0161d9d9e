"""Multi-image aggregation on planted people: paper mode finds them, per-person mode resists an
outlier image, and the launch program writes meshes and a report."""
import json
import subprocess
import sys

import jax
import numpy as np

from facerecon_jax.aggregation import aggregate
from facerecon_jax.io import export
from facerecon_jax.geometry.coefficients import CoeffLayout

LAYOUT = CoeffLayout(80, 53, 80, "rgb")      # the default face model's sizes
ID, EXP, TEX = (LAYOUT.slices()[k] for k in ("id", "exp", "tex"))


def _people(rng, n_people=3, n_images=5, noise=0.15, outlier=None):
    truth, names, vecs, groups = [], [], [], []
    for p in range(n_people):
        person = LAYOUT.split(np.zeros(LAYOUT.size, np.float32))
        person = {k: np.array(v) for k, v in person.items()}
        person["id"] = rng.normal(size=80).astype(np.float32)
        person["tex"] = rng.normal(size=80).astype(np.float32)
        truth.append(np.concatenate([person["id"], person["tex"]]))
        for j in range(n_images):
            img = {k: v.copy() for k, v in person.items()}
            s = outlier if (outlier is not None and j == 0) else noise
            img["id"] += rng.normal(size=80).astype(np.float32) * s
            img["tex"] += rng.normal(size=80).astype(np.float32) * s
            img["exp"] = np.clip(rng.normal(size=53) * 0.3, 0, 1).astype(np.float32)
            img["angles"] = rng.uniform(-0.4, 0.4, 3).astype(np.float32)
            img["gamma"] = rng.normal(size=27).astype(np.float32) * 0.2
            names.append(f"p{p}_img{j}")
            vecs.append(np.asarray(LAYOUT.join({k: v[None] for k, v in img.items()}))[0])
            groups.append(p)
    return np.array(truth), names, np.stack(vecs), np.array(groups)


def test_paper_mode_recovers_planted_people(rng):
    truth, names, x, groups = _people(rng)
    people, labels, inertia = aggregate.cluster_all(names, x, LAYOUT, 3, key=jax.random.PRNGKey(0))
    from sklearn.metrics import adjusted_rand_score
    assert adjusted_rand_score(groups, labels) == 1.0
    assert len(people) == 3 and inertia > 0
    # each cluster's identity is its person's, to within the noise averaged over its 5 images:
    # the centroid is the members' mean, ~1/sqrt(5) of one image's error (0.15 sqrt(160) ~ 1.9)
    idtex = lambda v: np.concatenate([v[..., ID], v[..., TEX]], -1)   # noqa: E731
    for person in people:
        v = idtex(person.vector)
        p = int(np.argmin(np.linalg.norm(truth - v, axis=1)))
        members = idtex(x[groups == p])
        assert sorted(person.members) == [n for n, g in zip(names, groups) if g == p]
        np.testing.assert_allclose(v, members.mean(0), atol=1e-4)
        one = np.linalg.norm(members - truth[p], axis=1)            # each image's own error
        assert np.linalg.norm(v - truth[p]) < 0.6 * one.min(), one
        assert np.linalg.norm(v - truth[p]) < 0.6 * 0.15 * np.sqrt(160)
        np.testing.assert_array_equal(person.vector[EXP], 0)      # neutral expression


def test_per_person_mode_ignores_an_outlier_image(rng):
    truth, names, x, groups = _people(rng, n_people=1, n_images=6, noise=0.1, outlier=3.0)
    r = aggregate.aggregate_person(names, x, LAYOUT, mode="per_person",
                                   key=jax.random.PRNGKey(1))
    assert "p0_img0" not in r.members and len(r.members) == 5
    err = lambda v: np.linalg.norm(np.concatenate([v[ID], v[TEX]]) - truth[0])  # noqa: E731
    mean = aggregate.aggregate_person(names, x, LAYOUT, mode="mean")
    median = aggregate.aggregate_person(names, x, LAYOUT, mode="median")
    np.testing.assert_allclose(mean.vector[ID], x[:, ID].mean(0), rtol=1e-5)
    np.testing.assert_allclose(median.vector[ID], np.median(x[:, ID], 0), rtol=1e-5)
    assert err(r.vector) < 0.5 * err(mean.vector)
    assert err(r.vector) < err(median.vector)
    # the kept cluster's centroid is the mean of the 5 inliers: better than any one of them
    inliers = x[1:]
    np.testing.assert_allclose(r.vector[ID], inliers[:, ID].mean(0), atol=1e-4)
    np.testing.assert_allclose(r.vector[TEX], inliers[:, TEX].mean(0), atol=1e-4)
    assert err(r.vector) < 0.6 * min(err(v) for v in inliers)


def test_aggregate_launch_writes_people(rng, tmp_path, request):
    truth, names, x, groups = _people(rng)
    for name, v, g in zip(names, x, groups):
        (tmp_path / "in" / f"person{g}").mkdir(parents=True, exist_ok=True)
        export.save_coefficients(tmp_path / "in" / f"person{g}" / f"{name}_coeffs.npz",
                                 {k: np.asarray(a) for k, a in LAYOUT.split(v).items()})
    for mode in ("paper", "per_person"):
        out = tmp_path / mode
        res = subprocess.run([sys.executable, "-m", "launch.aggregate", "--input",
                              str(tmp_path / "in"), "--output_dir", str(out), "--mode", mode],
                             cwd=request.config.rootpath, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
        report = json.loads((out / "report.json").read_text())
        assert len(report["people"]) == 3
        for p in report["people"]:
            for f in p["files"]:
                assert (tmp_path / f).exists() or __import__("pathlib").Path(f).exists()
        # no member textures here: the person's texture is its albedo, and the page shows it
        assert all(p["texture_members"] == 0 for p in report["people"])
        page = (out / "index.html").read_text()
        for p in report["people"]:
            assert (out / f"{p['name']}.glb").exists() and f"viewer-{p['name']}" in page
        if mode == "paper":
            assert report["adjusted_rand_index_vs_folders"] == 1.0
            assert len(report["assignments"]) == 15
        else:
            assert [p["name"] for p in report["people"]] == ["person0", "person1", "person2"]


def test_aggregate_joint_mode_fits_each_persons_photos_together(tmp_path, request):
    """Folders of photos: by default one joint fit per person (one identity for all of a
    person's photos, pose per photo); a photo with no face is named, skipped and counted."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    astronaut = skimage.data.astronaut()
    (tmp_path / "in" / "eileen").mkdir(parents=True)
    (tmp_path / "in" / "grace").mkdir(parents=True)
    Image.fromarray(astronaut).save(tmp_path / "in" / "eileen" / "a.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(
        tmp_path / "in" / "eileen" / "b.png")
    Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(
        tmp_path / "in" / "eileen" / "blank.png")
    grace = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    Image.open(grace).save(tmp_path / "in" / "grace" / "g.jpg")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "launch.aggregate", "--input",
                          str(tmp_path / "in"), "--output_dir", str(out),
                          "--config.steps_landmark=4", "--config.steps=2",
                          "--config.batch_size=4", "--texture_size=128"],
                         cwd=request.config.rootpath, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 1, res.stdout + res.stderr        # the blank photo
    assert "blank.png" in res.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "joint"
    assert [p["name"] for p in report["people"]] == ["eileen", "grace"]
    ids = {}
    for person, names in (("eileen", ("a", "b")), ("grace", ("g",))):
        for n in names:
            c = aggregate.read_coefficients(out / "reconstruct" / person / f"{n}_coeffs.npz")
            ids.setdefault(person, []).append(c)
    a, b = ids["eileen"]
    np.testing.assert_allclose(a["id"], b["id"], atol=1e-6)       # shared identity
    np.testing.assert_allclose(a["tex"], b["tex"], atol=1e-6)
    assert np.abs(a["angles"] - b["angles"]).max() > 0.05          # own pose (mirrored photo)
    assert np.abs(a["id"] - ids["grace"][0]["id"]).max() > 1e-3
    person = aggregate.read_coefficients(out / "eileen_coeffs.npz")
    np.testing.assert_allclose(person["id"], a["id"], atol=1e-6)
