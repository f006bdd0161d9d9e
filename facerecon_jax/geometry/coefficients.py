"""Layout of the coefficient vector x (docs/design.md §2).

Order: id[n_id] exp[n_exp] tex[n_tex] angles[3] gamma[9 or 27] trans[3].
Light "mono" (the paper): gamma in R^9, one set of 9 SH coefficients for all channels.
Light "rgb" (Deep3DFaceRecon): gamma in R^27, channel-major (0:9 R, 9:18 G, 18:27 B).
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import jax.numpy as jnp

LIGHT_DIMS = {"mono": 9, "rgb": 27}
FIELDS = ("id", "exp", "tex", "angles", "gamma", "trans")


@dataclasses.dataclass(frozen=True)
class CoeffLayout:
    n_id: int = 80
    n_exp: int = 64
    n_tex: int = 80
    light: str = "rgb"

    def __post_init__(self):
        if self.light not in LIGHT_DIMS:
            raise ValueError(f"light must be one of {sorted(LIGHT_DIMS)}, got {self.light!r}")

    @classmethod
    def for_model(cls, model, light: str = "mono") -> "CoeffLayout":
        return cls(n_id=model.n_id, n_exp=model.n_exp, n_tex=model.n_tex, light=light)

    @property
    def n_gamma(self) -> int:
        return LIGHT_DIMS[self.light]

    def sizes(self) -> Dict[str, int]:
        return {"id": self.n_id, "exp": self.n_exp, "tex": self.n_tex, "angles": 3,
                "gamma": self.n_gamma, "trans": 3}

    def slices(self) -> Dict[str, slice]:
        out, start = {}, 0
        for name, size in self.sizes().items():
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def size(self) -> int:
        return sum(self.sizes().values())

    def split(self, x) -> Dict[str, jnp.ndarray]:
        """(..., size) -> dict of (..., n_field) arrays."""
        if x.shape[-1] != self.size:
            raise ValueError(f"coefficient vector has {x.shape[-1]} entries, layout {self} "
                             f"expects {self.size}")
        return {name: x[..., s] for name, s in self.slices().items()}

    def join(self, parts: Dict[str, jnp.ndarray]) -> jnp.ndarray:
        """Inverse of split; missing fields are zero (mean face, frontal, ambient light)."""
        batch = next(iter(parts.values())).shape[:-1]
        return jnp.concatenate(
            [jnp.asarray(parts[n]) if n in parts else jnp.zeros(batch + (k,), jnp.float32)
             for n, k in self.sizes().items()], axis=-1)

    def zeros(self, batch=()) -> jnp.ndarray:
        return jnp.zeros(tuple(batch) + (self.size,), jnp.float32)
