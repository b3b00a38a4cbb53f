"""One training step of FOMM / the MEGC2021 seed: generator + keypoint-detector update, then the
discriminator update, as a single function that `jit_train_step` compiles once for the mesh.

The step follows the original `GeneratorFullModel` / `DiscriminatorFullModel` (first-order-model,
`modules/model.py`):

1. keypoints of source and driving frame (seed: the 18 AU keypoints of the clip's onset frame for
   both passes; tip24: each frame's own landmarks), the generator warps the source to the driving
   frame;
2. perceptual pyramid loss between prediction and driving frame, LSGAN generator loss and feature
   matching (GAN weight > 0), equivariance value and Jacobian losses under a random TPS warp;
3. Adam updates of keypoint detector and generator from the one total loss;
4. discriminator LSGAN loss on the same (detached) prediction, Adam update of the discriminator.

A step whose losses or gradients are not all finite changes nothing but the counters: the new
state is `where(ok, updated, old)` leaf by leaf, inside the compiled program, so a bad batch
needs no host round-trip and the parameters stay the last good ones.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from me_fomm.model import compute_dtype, perceptual
from me_fomm.prior.inputs import keypoint_prior
from me_fomm.train import losses as losses_lib
from me_fomm.train import mesh as mesh_lib
from me_fomm.train.state import MODULES, TrainState


def batch_priors(batch: dict, model_cfg):
  """The keypoint detector's prior for the source and the driving pass of `batch` (None, None for
  learned keypoints); `prior.inputs.keypoint_prior` decides which frame's AU keypoints each gets."""
  onset = batch.get("onset_landmarks")
  return (
    keypoint_prior(model_cfg, batch.get("source_landmarks"), onset),
    keypoint_prior(model_cfg, batch.get("driving_landmarks"), onset),
  )


def _apply_train(module, variables: dict, *args, **kwargs):
  """`module.apply` in training mode, returning the updated non-parameter collections too."""
  mutable = [k for k in variables if k != "params"]
  if mutable:
    out, updates = module.apply(variables, *args, train=True, mutable=mutable, **kwargs)
    return out, {**variables, **updates}
  return module.apply(variables, *args, train=True, **kwargs), variables


def _all_finite(tree) -> jax.Array:
  leaves = [
    jnp.all(jnp.isfinite(x))
    for x in jax.tree.leaves(tree)
    if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train_step(
  models, model_cfg, config: ml_collections.ConfigDict, optimizers: dict
) -> Callable[[TrainState, dict, Any], tuple[TrainState, dict]]:
  """The step as a pure function `(state, batch, vgg_layers) -> (state, metrics)`.

  `batch` holds `source`, `driving` (B, H, W, 3) float32 in [0, 1] and the landmark arrays of
  `me_fomm.data.pipeline.pair_loader` (only those the keypoint mode reads are used).
  `vgg_layers` are the frozen VGG weights of the perceptual loss (`perceptual.load_vgg(...)['layers']`,
  None when its weights are all zero); an argument rather than a closure constant, so the
  compiled program does not embed 60 MB of weights. Compile with `jit_train_step`.
  """
  from me_fomm.model import pyramid as pyramid_lib

  lw = config.loss
  if lw.equivariance_value or lw.equivariance_jacobian:
    from me_fomm.model import tps as tps_lib
  scales = tuple(lw.scales)
  disc_scales = tuple(model_cfg.discriminator.scales)
  gan_on = lw.generator_gan > 0
  use_kp = bool(model_cfg.discriminator.get("use_kp", False))
  dtype = compute_dtype(model_cfg)
  use_vgg = any(lw.perceptual)

  def generator_loss(trainable, variables, batch, priors, rng, vgg):
    v = {name: dict(variables[name]) for name in MODULES}
    v["kp_detector"]["params"] = trainable["kp_detector"]
    v["generator"]["params"] = trainable["generator"]
    source = batch["source"].astype(jnp.float32)
    driving = batch["driving"].astype(jnp.float32)
    prior_s, prior_d = priors

    kp_source, v["kp_detector"] = _apply_train(
      models.kp_detector, v["kp_detector"], source, prior=prior_s
    )
    kp_driving, v["kp_detector"] = _apply_train(
      models.kp_detector, v["kp_detector"], driving, prior=prior_d
    )
    generated, v["generator"] = _apply_train(
      models.generator, v["generator"], source, kp_source=kp_source, kp_driving=kp_driving
    )
    prediction = generated["prediction"].astype(jnp.float32)

    out = {}
    if lw.get("landmark_flow", 0.0):
      out["landmark_flow"] = lw.landmark_flow * losses_lib.landmark_flow_loss(
        generated["deformation"],
        batch["driving_landmarks"],
        batch["source_landmarks"],
        source.shape[1],
      )
    pyr_real = pyramid_lib.image_pyramid(driving, scales)
    pyr_gen = pyramid_lib.image_pyramid(prediction, scales)
    if use_vgg:
      out["perceptual"] = perceptual.perceptual_loss(
        vgg, pyr_gen, pyr_real, scales, lw.perceptual, dtype
      )
    disc_kp = jax.tree.map(jax.lax.stop_gradient, kp_driving) if use_kp else None
    if gan_on:
      d_pyr_real = pyramid_lib.image_pyramid(driving, disc_scales)
      d_pyr_gen = pyramid_lib.image_pyramid(prediction, disc_scales)
      d_gen, v["discriminator"] = _apply_train(
        models.discriminator, v["discriminator"], d_pyr_gen, kp=disc_kp
      )
      d_real, v["discriminator"] = _apply_train(
        models.discriminator, v["discriminator"], d_pyr_real, kp=disc_kp
      )
      out["generator_gan"] = lw.generator_gan * losses_lib.lsgan_generator_loss(d_gen, disc_scales)
      if any(lw.feature_matching):
        out["feature_matching"] = losses_lib.feature_matching_loss(
          d_real, d_gen, disc_scales, lw.feature_matching
        )
    if lw.equivariance_value or lw.equivariance_jacobian:
      t = config.transform
      tps = tps_lib.sample_tps(rng, driving.shape[0], t.sigma_affine, t.sigma_tps, t.points_tps)
      transformed = tps_lib.transform_frame(tps, driving)
      # With prior keypoints the transformed frame gets the driving pass's prior, as in the
      # seed: its value term is then a constant and only the Jacobian term trains.
      kp_t, v["kp_detector"] = _apply_train(
        models.kp_detector, v["kp_detector"], transformed, prior=prior_d
      )
      if lw.equivariance_value:
        warped = tps_lib.warp_coordinates(tps, kp_t["value"].astype(jnp.float32))
        out["equivariance_value"] = lw.equivariance_value * losses_lib.equivariance_value_loss(
          kp_driving["value"], warped
        )
      if lw.equivariance_jacobian:
        jac_t = tps_lib.jacobian(tps, kp_t["value"].astype(jnp.float32))
        out["equivariance_jacobian"] = (
          lw.equivariance_jacobian
          * losses_lib.equivariance_jacobian_loss(kp_driving["jacobian"], jac_t, kp_t["jacobian"])
        )
    total = sum(out.values()) if out else jnp.zeros((), jnp.float32)
    aux = {"losses": out, "variables": v, "prediction": prediction, "kp_driving": disc_kp}
    return total.astype(jnp.float32), aux

  def train_step(state: TrainState, batch: dict, vgg_layers=None) -> tuple[TrainState, dict]:
    if use_vgg and vgg_layers is None:
      raise ValueError(
        "config.loss.perceptual has non-zero weights but no VGG layers were "
        "passed to the step (me_fomm.model.perceptual.load_vgg(...)['layers'])"
      )
    vgg = {"kind": lw.vgg, "layers": vgg_layers}
    variables = state.variables
    rng = jax.random.fold_in(state.rng, state.step)
    priors = batch_priors(batch, model_cfg)
    trainable = {
      "kp_detector": variables["kp_detector"]["params"],
      "generator": variables["generator"]["params"],
    }
    (g_total, aux), grads = jax.value_and_grad(generator_loss, has_aux=True)(
      trainable, variables, batch, priors, rng, vgg
    )
    new_vars = aux["variables"]
    new_opt = dict(state.opt_state)
    for name in ("kp_detector", "generator"):
      updates, new_opt[name] = optimizers[name].update(
        grads[name], state.opt_state[name], trainable[name]
      )
      new_vars[name]["params"] = optax.apply_updates(trainable[name], updates)
    metrics = dict(aux["losses"])
    finite = _all_finite((g_total, grads))

    if gan_on:
      disc_vars = new_vars["discriminator"]
      d_pyr_real = pyramid_lib.image_pyramid(batch["driving"].astype(jnp.float32), disc_scales)
      d_pyr_gen = jax.lax.stop_gradient(pyramid_lib.image_pyramid(aux["prediction"], disc_scales))

      def disc_loss(params):
        dv = {**disc_vars, "params": params}
        d_gen, dv = _apply_train(models.discriminator, dv, d_pyr_gen, kp=aux["kp_driving"])
        d_real, dv = _apply_train(models.discriminator, dv, d_pyr_real, kp=aux["kp_driving"])
        loss = config.loss.discriminator_gan * losses_lib.lsgan_discriminator_loss(
          d_real, d_gen, disc_scales
        )
        return loss.astype(jnp.float32), dv

      (d_total, dv), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(disc_vars["params"])
      updates, new_opt["discriminator"] = optimizers["discriminator"].update(
        d_grads, state.opt_state["discriminator"], disc_vars["params"]
      )
      dv["params"] = optax.apply_updates(disc_vars["params"], updates)
      new_vars["discriminator"] = dv
      metrics["disc_gan"] = d_total
      finite = finite & _all_finite((d_total, d_grads))

    # Skip the whole update (parameters, optimiser moments, BatchNorm statistics) if anything
    # was not finite; counters record it for the host.
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    skipped = (~finite).astype(jnp.int32)
    run = jnp.where(finite, 0, state.nonfinite_run + 1)
    new_state = state.replace(
      step=state.step + 1,
      variables=keep(new_vars, variables),
      opt_state=keep(new_opt, state.opt_state),
      nonfinite_total=state.nonfinite_total + skipped,
      nonfinite_run=run,
      nonfinite_run_max=jnp.maximum(state.nonfinite_run_max, run),
    )
    metrics = {k: v.astype(jnp.float32) for k, v in metrics.items()}
    metrics["loss"] = g_total
    metrics["skipped"] = skipped
    return new_state, metrics

  return train_step


def jit_train_step(train_step: Callable, mesh, donate: bool = True):
  """`train_step` compiled for `mesh`: state replicated and donated, batch split on `data`,
  VGG weights replicated."""
  repl = mesh_lib.replicated(mesh)
  return jax.jit(
    train_step,
    in_shardings=(repl, mesh_lib.batch_sharded(mesh), repl),
    out_shardings=(repl, repl),
    donate_argnums=(0,) if donate else (),
  )


def compile_train_step(jitted: Callable, state, batch, vgg_layers, compiler_options=None):
  """Ahead-of-time compile of `jit_train_step`'s function for these shapes (abstract values work).

  Returns `(compiled, seconds)`; `compiled` is called like the step. `compiler_options` are XLA
  debug options (a dict), e.g. `{'xla_backend_optimization_level': 0}`.
  """
  import time

  t = time.perf_counter()
  lowered = jitted.lower(state, batch, vgg_layers)
  options = dict(compiler_options) if compiler_options else None
  compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
  return compiled, time.perf_counter() - t


def make_predict_fn(models, model_cfg) -> Callable:
  """Eval-mode keypoints and prediction for a batch (the progress images), jit-compiled."""

  def predict(variables, batch):
    source = batch["source"].astype(jnp.float32)
    driving = batch["driving"].astype(jnp.float32)
    prior_s, prior_d = batch_priors(batch, model_cfg)
    kp_s = models.kp_detector.apply(variables["kp_detector"], source, prior=prior_s, train=False)
    kp_d = models.kp_detector.apply(variables["kp_detector"], driving, prior=prior_d, train=False)
    out = models.generator.apply(
      variables["generator"], source, kp_source=kp_s, kp_driving=kp_d, train=False
    )
    return {
      "prediction": out["prediction"].astype(jnp.float32),
      "kp_source": kp_s["value"].astype(jnp.float32),
      "kp_driving": kp_d["value"].astype(jnp.float32),
    }

  return jax.jit(predict)
