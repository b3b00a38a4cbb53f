"""Rematerialisation (`build_models(cfg, remat=True)`) changes memory, not values."""

import re

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm import model as model_lib
from me_fomm_experiments.configs.demo import tiny_model


def _tiny_config():
  # 32 px, scale 0.5 -> 16 px hourglass inputs, divisible by 2**3.
  return tiny_model(
    "fomm",
    image_size=32,
    num_kp=3,
    **{
      "kp_detector.num_blocks": 3,
      "kp_detector.max_features": 8,
      "generator.max_features": 8,
      "generator.num_down_blocks": 2,
      "generator.dense_motion.num_blocks": 3,
      "generator.dense_motion.max_features": 8,
      "discriminator.max_features": 8,
    },
  )


def _loss_fn(models):
  """Keypoints of both frames, the generator in training mode, an L1 reconstruction loss."""

  def loss(params, variables, source, driving):
    kv = {**variables["kp_detector"], "params": params["kp_detector"]}
    gv = {**variables["generator"], "params": params["generator"]}
    kp_s, _ = models.kp_detector.apply(kv, source, train=True, mutable=["batch_stats"])
    kp_d, kstats = models.kp_detector.apply(kv, driving, train=True, mutable=["batch_stats"])
    out, gstats = models.generator.apply(
      gv, source, kp_source=kp_s, kp_driving=kp_d, train=True, mutable=["batch_stats"]
    )
    value = jnp.mean(jnp.abs(out["prediction"] - driving)) + jnp.mean(kp_d["value"] ** 2)
    return value, (kstats, gstats)

  return loss


def test_remat_same_variables_loss_gradients_and_statistics():
  cfg = _tiny_config()
  plain, remat = model_lib.build_models(cfg), model_lib.build_models(cfg, remat=True)
  variables = model_lib.init_variables(plain, cfg, 0)
  # The parameter tree is the same with remat (names are given explicitly), so checkpoints load.
  remat_abstract = model_lib.abstract_variables(remat, cfg)
  assert jax.tree.structure(remat_abstract) == jax.tree.structure(variables)

  rng = np.random.default_rng(0)
  source = jnp.asarray(rng.random((2, 32, 32, 3), np.float32))
  driving = jnp.asarray(rng.random((2, 32, 32, 3), np.float32))
  params = {k: variables[k]["params"] for k in ("kp_detector", "generator")}

  # The remat version really holds checkpointed regions: per call of the loss 2 keypoint detector
  # hourglasses + generator (first, 2 down, 1 bottleneck, 2 up blocks, dense motion) = 9; the plain
  # one none. (The primitive is `remat2` in jax 0.10, `checkpoint` in some versions.)
  regions = [
    len(
      re.findall(
        r"\b(?:remat\w*|checkpoint)\[",
        str(jax.make_jaxpr(_loss_fn(m))(params, variables, source, driving)),
      )
    )
    for m in (plain, remat)
  ]
  assert regions == [0, 9]

  results = []
  for models in (plain, remat):
    grad_fn = jax.jit(jax.value_and_grad(_loss_fn(models), has_aux=True))
    results.append(grad_fn(params, variables, source, driving))
  (l0, aux0), g0 = results[0]
  (l1, aux1), g1 = results[1]
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
  # BatchNorm statistics updated inside the rematerialised blocks come out as without remat.
  for a, b in zip(jax.tree.leaves(aux0), jax.tree.leaves(aux1)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
