"""A small text progress bar for long work: done / total, rate, ETA (stderr); and the time each
stage of a pipeline took (`StageTimes`: images/s per stage)."""
from __future__ import annotations

import contextlib
import sys
import time


def _fmt(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, unit: str = "item", width: int = 28, stream=None,
                 min_interval: float = 0.2):
        self.total, self.unit, self.width = max(int(total), 0), unit, width
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self.min_interval = min_interval
        self.note = ""

    def rate(self) -> float:
        dt = time.perf_counter() - self.start
        return self.done / dt if dt > 0 else 0.0

    def eta(self) -> float:
        r = self.rate()
        return (self.total - self.done) / r if r > 0 else float("nan")

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        r = self.rate()
        speed = f"{r:.2f} {self.unit}/s" if r >= 1 else (f"{1 / r:.1f} s/{self.unit}" if r > 0
                                                         else f"- s/{self.unit}")
        note = f" {self.note}" if self.note else ""
        return (f"[{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{self.total} {self.unit}s"
                f" | {speed} | elapsed {_fmt(time.perf_counter() - self.start)} | ETA "
                f"{_fmt(self.eta())}{note}")

    def update(self, n: int = 1, note: str | None = None, force: bool = False):
        self.done += n
        if note is not None:
            self.note = note
        now = time.perf_counter()
        if force or self.done >= self.total or now - self._last >= self.min_interval:
            self._last = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self):
        self.stream.write("\r" + self.line() + "\n")
        self.stream.flush()


class StageTimes:
    """Wall time and items per named stage, summed over a run: `with times.stage("detect", 1):`
    around each piece of work. Stages are kept in the order first seen."""

    def __init__(self):
        self.seconds: dict = {}
        self.items: dict = {}

    @contextlib.contextmanager
    def stage(self, name: str, items: int = 1):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, items)

    def add(self, name: str, seconds: float, items: int = 1) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)
        self.items[name] = self.items.get(name, 0) + int(items)

    def as_dict(self) -> dict:
        """{stage: {"seconds", "items", "per_second"}}."""
        return {k: {"seconds": s, "items": self.items[k],
                    "per_second": self.items[k] / s if s > 0 else float("inf")}
                for k, s in self.seconds.items()}

    def summary(self, unit: str = "images") -> str:
        return ", ".join(f"{k} {v['per_second']:.1f} {unit}/s ({v['items']} in "
                         f"{v['seconds']:.1f} s)" for k, v in self.as_dict().items())
