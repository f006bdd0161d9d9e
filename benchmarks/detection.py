"""Face detection on hard photos made from the packaged ones: recall of the main face, and time.

  python benchmarks/detection.py [--out /tmp/detection_photos]

Test photos from the two public-domain photos that ship with scikit-image and matplotlib
(astronaut, Grace Hopper): as they are, rotated (+-25, +-40 degrees), scaled (0.5x, 2x), partly
covered (a dark band over the forehead and one eye, as hair; a block over the lower face), and
groups of both people at different sizes on one canvas (the main face large and tilted by 40
degrees with hair over it, or by 45; the other small and upright; and one group all upright).
The true faces are the originals' detected 68 landmarks moved with the photo.

For each detector policy: main-face recall (`faces="largest"` picks a face whose box centre lies
in the main face's landmark box), all-face recall (true faces found by any box), false boxes,
and seconds per photo. Policies: "HOG, CNN only if none" (before issue 11) and "HOG + CNN when
HOG's faces are small" (the default now).
"""
import argparse
import pathlib
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from facerecon_jax.photo import detection


def _originals():
    import matplotlib.cbook
    import skimage.data
    astro = skimage.data.astronaut()
    hopper = detection.read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                                   asfileobj=False))
    det = detection.FaceDetector()
    out = []
    for name, img in (("astronaut", astro), ("hopper", hopper)):
        out.append((name, img, det.detect(img)[0].landmarks68))
    return out


def _warp(img, pts, m, size):
    w, h = size
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    p = np.c_[pts, np.ones(len(pts))] @ m.T
    return out, p


def _rotate(img, pts, deg):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return _warp(img, pts, m, (w, h))


def _scale(img, pts, f):
    h, w = img.shape[:2]
    m = np.array([[f, 0, 0], [0, f, 0]], np.float64)
    return _warp(img, pts, m, (int(w * f), int(h * f)))


def _cover(img, pts, part):
    img = img.copy()
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    w, h = x1 - x0, y1 - y0
    if part == "hair":         # a dark band over the forehead and the image-left eye
        poly = np.array([[x0 - 0.2 * w, y0 - 0.4 * h], [x0 + 0.75 * w, y0 - 0.4 * h],
                         [x0 + 0.45 * w, y0 + 0.35 * h], [x0 - 0.2 * w, y0 + 0.55 * h]])
        cv2.fillPoly(img, [poly.astype(np.int32)], (35, 25, 20))
    else:                      # a block over mouth and chin (a hand, a scarf)
        cv2.rectangle(img, (int(x0), int(y0 + 0.62 * h)), (int(x1), int(y1 + 0.1 * h)),
                      (200, 190, 170), -1)
    return img


def _group(main, other, deg, small):
    """The main person tilted and large, the other upright and small, on a 900 x 700 canvas."""
    (img_a, pts_a), (img_b, pts_b) = main, other
    canvas = np.full((700, 900, 3), 120, np.uint8)
    a, pa = _rotate(img_a, pts_a, deg)
    ha = a.shape[0]
    f = 560 / ha
    a, pa = _scale(a, pa, f)
    canvas[70:70 + a.shape[0], 40:40 + a.shape[1]] = a[:630 - 0, :min(a.shape[1], 860)]
    pa = pa + [40, 70]
    b, pb = _scale(img_b, pts_b, small)
    y, x = 40, 900 - b.shape[1] - 20
    canvas[y:y + b.shape[0], x:x + b.shape[1]] = b
    return canvas, [pa, pb + [x, y]]


def make_photos():
    """[(name, image, [true landmark sets, main face first])]."""
    photos = []
    orig = _originals()
    for name, img, pts in orig:
        photos.append((name, img, [pts]))
        for deg in (-40, -25, 25, 40):
            r, p = _rotate(img, pts, deg)
            photos.append((f"{name}_rot{deg}", r, [p]))
        for f in (0.5, 2.0):
            s, p = _scale(img, pts, f)
            photos.append((f"{name}_x{f}", s, [p]))
        for part in ("hair", "lower"):
            photos.append((f"{name}_{part}", _cover(img, pts, part), [pts]))
        r, p = _rotate(img, pts, 25)
        photos.append((f"{name}_rot25_hair", _cover(r, p, "hair"), [p]))
    (_, ia, pa), (_, ib, pb) = orig
    hair_a, hair_b = (_cover(ia, pa, "hair"), pa), (_cover(ib, pb, "hair"), pb)
    for main, other, deg, small, tag in ((hair_a, (ib, pb), 40, 0.3, "astronaut_rot40_hair"),
                                         (hair_b, (ia, pa), -40, 0.35, "hopper_rot-40_hair"),
                                         ((ia, pa), (ib, pb), 45, 0.3, "astronaut_rot45"),
                                         ((ib, pb), (ia, pa), -45, 0.35, "hopper_rot-45"),
                                         ((ia, pa), (ib, pb), 0, 0.45, "astronaut_upright")):
        img, truth = _group(main, other, deg, small)
        photos.append((f"group_{tag}", img, truth))
    return photos


def _hit(box, pts):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    return x0 <= cx <= x1 and y0 <= cy <= y1


def evaluate(detector, photos):
    main_ok, found, total, false, secs = 0, 0, 0, 0, []
    misses = []
    for name, img, truth in photos:
        t0 = time.perf_counter()
        faces = detector.detect(img)
        secs.append(time.perf_counter() - t0)
        chosen = detection.select_faces(faces, "largest")
        if chosen and _hit(chosen[0].box, truth[0]):
            main_ok += 1
        else:
            misses.append(name)
        total += len(truth)
        found += sum(any(_hit(f.box, t) for f in faces) for t in truth)
        false += sum(not any(_hit(f.box, t) for t in truth) for f in faces)
    return {"main": main_ok, "n": len(photos), "found": found, "total": total, "false": false,
            "sec": float(np.mean(secs)), "sec_max": float(np.max(secs)), "misses": misses}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the test photos here (PNG)")
    args = ap.parse_args()
    photos = make_photos()
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, img, _ in photos:
            cv2.imwrite(str(out / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    policies = {
        "HOG, CNN only if none (before)": detection.FaceDetector(cnn_when_smaller=0.0,
                                                                cnn_max_side=2000),
        "HOG + CNN when HOG faces small (now)": detection.FaceDetector(),
        "HOG + CNN always": detection.FaceDetector(cnn_when_smaller=1e9),
    }
    for det in policies.values():          # load the models before timing
        det.detect(photos[0][1])
    print(f"{len(photos)} photos, {sum(len(t) for _, _, t in photos)} faces")
    print("| policy | main face found | all faces found | false boxes | s / photo (mean, max) |")
    print("|---|---|---|---|---|")
    for label, det in policies.items():
        r = evaluate(det, photos)
        print(f"| {label} | {r['main']}/{r['n']} | {r['found']}/{r['total']} | {r['false']} | "
              f"{r['sec']:.2f}, {r['sec_max']:.2f} |")
        print(f"<!-- misses: {', '.join(r['misses']) or 'none'} -->")


if __name__ == "__main__":
    main()
