import math

import jax.numpy as jnp
import numpy as np
import scipy.special

from facerecon_jax.geometry import lighting


def _real_sh(l, m, n):
    """Real spherical harmonics from scipy's complex ones (Condon-Shortley phase removed)."""
    theta = np.arccos(np.clip(n[:, 2], -1, 1))          # polar, from +z
    phi = np.arctan2(n[:, 1], n[:, 0])                   # azimuth, from +x
    y = scipy.special.sph_harm_y(l, abs(m), theta, phi)
    cs = (-1) ** abs(m)
    if m > 0:
        return cs * math.sqrt(2) * y.real
    if m < 0:
        return cs * math.sqrt(2) * y.imag
    return y.real


def test_sh_basis_against_real_spherical_harmonics(rng):
    n = rng.normal(size=(200, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    ours = np.asarray(lighting.sh_basis(jnp.asarray(n, jnp.float32)), np.float64)
    a = (math.pi, 2 * math.pi / math.sqrt(3), 2 * math.pi / math.sqrt(8))
    # (l, m, sign): Deep3DFaceRecon's order and signs (y, z, x in band 1; xy, yz, z2, xz, x2-y2).
    order = [(0, 0, 1), (1, -1, -1), (1, 0, 1), (1, 1, -1), (2, -2, 1), (2, -1, -1), (2, 0, 1),
             (2, 1, -1), (2, 2, 1)]
    for b, (l, m, sign) in enumerate(order):
        expected = sign * a[l] * _real_sh(l, m, n)
        np.testing.assert_allclose(ours[:, b], expected, atol=2e-5, err_msg=f"basis {b}")


def test_ambient_only_light_is_uniform_and_mono_equals_rgb(rng):
    n = rng.normal(size=(50, 3)).astype(np.float32)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    irr = np.asarray(lighting.irradiance(jnp.asarray(n), jnp.zeros(9)))
    np.testing.assert_allclose(irr, 0.8 * math.pi / math.sqrt(4 * math.pi), rtol=1e-6)
    g = rng.normal(size=9).astype(np.float32) * 0.3
    mono = lighting.irradiance(jnp.asarray(n), jnp.asarray(g))
    rgb = lighting.irradiance(jnp.asarray(n), jnp.asarray(np.tile(g, 3)))
    np.testing.assert_allclose(mono, rgb, rtol=1e-6)


def test_rgb_light_is_channel_major(rng):
    n = jnp.array([[0.0, 0.0, 1.0]])
    g = np.zeros(27, np.float32)
    g[9 + 2] = 0.5                        # G channel, basis 2 (a1 c1 nz)
    irr = np.asarray(lighting.irradiance(n, jnp.asarray(g)))[0]
    assert irr[1] > irr[0] == irr[2]


def test_shading_multiplies_albedo(rng):
    n = jnp.array([[0.0, 1.0, 0.0]])
    albedo = jnp.array([[0.5, 0.25, 1.0]])
    g = jnp.zeros(9).at[1].set(-0.2)
    c = np.asarray(lighting.shade(albedo, n, g))
    irr = np.asarray(lighting.irradiance(n, g))
    np.testing.assert_allclose(c, np.asarray(albedo) * irr, rtol=1e-6)
