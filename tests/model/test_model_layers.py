"""Layers with PyTorch conventions: BatchNorm (also sharded) and spectral-norm convolutions."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from me_fomm.model import discriminator, layers


def test_batchnorm_matches_torch_conventions():
  x = jax.random.normal(jax.random.key(3), (4, 3, 3, 2)) * 3 + 1
  bn = layers.BatchNorm2d()
  v = bn.init(jax.random.key(0), x, train=False)
  y, upd = bn.apply(v, x, train=True, mutable=["batch_stats"])
  xs = np.asarray(x).reshape(-1, 2)
  np.testing.assert_allclose(
    y.reshape(-1, 2), (xs - xs.mean(0)) / np.sqrt(xs.var(0) + 1e-5), atol=1e-5
  )
  np.testing.assert_allclose(upd["batch_stats"]["mean"], 0.1 * xs.mean(0), rtol=1e-5)
  np.testing.assert_allclose(upd["batch_stats"]["var"], 0.9 + 0.1 * xs.var(0, ddof=1), rtol=1e-5)


def test_spectral_norm_power_iteration_and_eval():
  x = jax.random.normal(jax.random.key(4), (1, 6, 6, 3))
  sn = discriminator.SpectralConv2d(5, 3)
  v = sn.init(jax.random.key(0), x, train=False)
  kernel = np.asarray(v["params"]["kernel"])
  true_sigma = np.linalg.svd(np.transpose(kernel, (3, 2, 0, 1)).reshape(5, -1), compute_uv=False)[0]
  state = v
  step = jax.jit(lambda st: sn.apply(st, x, train=True, mutable=["batch_stats"]))
  for _ in range(30):
    _, upd = step(state)
    state = {"params": v["params"], "batch_stats": upd["batch_stats"]}
  u, vv = state["batch_stats"]["u"], state["batch_stats"]["v"]
  w = np.transpose(kernel, (3, 2, 0, 1)).reshape(5, -1)
  assert float(u @ w @ vv) == pytest.approx(true_sigma, rel=1e-4)
  # Eval: no power iteration, the stored u, v are used as they are.
  y_eval, upd = sn.apply(state, x, train=False, mutable=["batch_stats"])
  np.testing.assert_array_equal(upd["batch_stats"]["u"], u)
  ref = (
    jax.lax.conv_general_dilated(
      x, kernel / float(u @ w @ vv), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    + v["params"]["bias"]
  )
  np.testing.assert_allclose(y_eval, ref, atol=1e-5)


def test_batchnorm_statistics_are_global_under_sharding():
  from jax.sharding import Mesh, NamedSharding
  from jax.sharding import PartitionSpec as P

  devices = np.array(jax.devices())
  if devices.size < 2:
    pytest.skip("needs several (simulated) devices")
  x = jax.random.normal(jax.random.key(5), (devices.size * 2, 4, 4, 3)) * 2 + 1
  bn = layers.BatchNorm2d()
  v = bn.init(jax.random.key(0), x, train=False)
  step = jax.jit(lambda vv, xx: bn.apply(vv, xx, train=True, mutable=["batch_stats"]))
  y_one, s_one = step(v, x)
  sharded = jax.device_put(x, NamedSharding(Mesh(devices, ("data",)), P("data")))
  y_sh, s_sh = step(v, sharded)
  np.testing.assert_allclose(y_sh, y_one, atol=1e-6)
  np.testing.assert_allclose(s_sh["batch_stats"]["var"], s_one["batch_stats"]["var"], rtol=1e-6)
