"""Loss curves per term of training runs, from what `facerecon-train` printed.

  facerecon-train ... | tee run.log
  python benchmarks/training_curves.py run.log [other.log ...] --out curves.png

Reads the console lines `step N/M loss=... photo=... lan=... coef=... supervised=... |` of each
log and draws one panel per term (log scale), one line per run, so runs can be compared term by
term (e.g. whether the supervised term falls during a warm-up). Writes a PNG.
"""
import argparse
import pathlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LINE = re.compile(r"^step (\d+)/\d+ (.*?) \|")


def read_log(path) -> dict:
    """{term: ([steps], [values])} from one console log."""
    curves: dict = {}
    for line in pathlib.Path(path).read_text(errors="replace").splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        step = int(m.group(1))
        for item in m.group(2).split():
            if "=" in item:
                k, v = item.split("=", 1)
                try:
                    value = float(v)
                except ValueError:
                    continue
                s, vs = curves.setdefault(k, ([], []))
                s.append(step)
                vs.append(value)
    return curves


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--out", default="training_curves.png")
    args = ap.parse_args()
    runs = {pathlib.Path(p).stem: read_log(p) for p in args.logs}
    terms = []
    for c in runs.values():
        terms += [t for t in c if t not in terms]
    if not terms:
        raise SystemExit(f"no 'step N/M term=value' lines in {', '.join(args.logs)}")
    cols = min(3, len(terms))
    rows = -(-len(terms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, term in zip(axes.flat, terms):
        for k, (name, c) in enumerate(runs.items()):
            if term in c:      # a run keeps its colour in every panel
                ax.plot(*c[term], label=name, lw=1, color=colours[k % len(colours)])
        ax.set_title(term)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(terms):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colours[k % len(colours)], label=name)
               for k, name in enumerate(runs)]
    axes.flat[0].legend(handles=handles, fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({len(runs)} runs, terms: {', '.join(terms)})")


if __name__ == "__main__":
    main()
