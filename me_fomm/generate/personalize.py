"""Test-time personalisation: fine-tune the generator on the target photo alone before animating it.

One-shot fine-tuning as in Zakharov et al. 2019, "Few-Shot Adversarial Learning of Realistic Neural Talking
Head Models" (ICCV 2019, Sec. 3.3): a generator trained on few identities renders an unseen face poorly; a few
hundred cheap steps on self-supervised pairs made from the target photo itself fix its appearance. Here a pair
is (source = the target, driving = a random small affine warp of the target) with the warp's landmarks moved by
the same warp; the loss is training's reconstruction loss (perceptual VGG pyramid + L1), no GAN. Only the
target image (and its landmarks) is used, never any ground truth. The keypoint detector stays frozen, so the
motion the animation transfers is the trained model's; only the generator's parameters change.

    variables = personalize(models, variables, model_config, target, target_landmarks, steps=150)

`Personalizer` keeps the compiled step, so several targets of one model compile once.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from me_fomm.model import check_inputs, geometry, perceptual
from me_fomm.model import pyramid as pyramid_lib
from me_fomm.prior.inputs import keypoint_prior


@dataclasses.dataclass
class PersonalizeConfig:
  steps: int = 150
  batch_size: int = 4
  learning_rate: float = 2e-4
  sigma_affine: float = 0.03  # random affine around the identity (normalised coordinates)
  identity_fraction: float = 0.25  # share of pairs with no warp (learn to copy the target exactly)
  scales: tuple = (1, 0.5)
  perceptual: tuple = (10.0, 10.0, 0.0, 0.0, 0.0)
  l1: float = 10.0
  seed: int = 0


def _warp_affine(theta, frames):
  """frames (B,H,W,C) sampled at theta(grid): output pixel z shows input at A z + t (reflection padding)."""
  from me_fomm.model import tps as tps_lib

  return tps_lib.transform_frame({"theta": theta}, frames)


def _inverse_affine_points(theta, points):
  """Where input points p (B,N,2) land in the warped frame: z = A^-1 (p - t)."""
  a, t = theta[:, :, :2], theta[:, :, 2]
  inv = jnp.linalg.inv(a)
  return jnp.einsum("bij,bnj->bni", inv, points - t[:, None, :])


class Personalizer:
  """Compiled fine-tuning of one model's generator on single target photos."""

  def __init__(
    self, models, model_config, config: PersonalizeConfig | None = None, vgg: dict | None = None
  ):
    self.cfg = cfg = config or PersonalizeConfig()
    self.model_config = model_config
    self.uses_prior = model_config.kp_mode == "prior"
    size = int(model_config.image_size)
    use_vgg = any(cfg.perceptual)
    self.vgg = (vgg if vgg is not None else perceptual.load_vgg("vgg16")) if use_vgg else None
    self.optimizer = optax.adam(cfg.learning_rate, b1=0.5, b2=0.999)
    kp_detector, generator = models.kp_detector, models.generator
    scales = tuple(cfg.scales)

    vgg_kind = self.vgg["kind"] if use_vgg else None

    def loss_fn(gen_params, v, target, landmarks, rng, vgg_layers):
      vgg = {"kind": vgg_kind, "layers": vgg_layers}
      b = cfg.batch_size
      k1, k2 = jax.random.split(rng)
      theta = cfg.sigma_affine * jax.random.normal(k1, (b, 2, 3), jnp.float32) + jnp.eye(2, 3)
      keep = jax.random.uniform(k2, (b, 1, 1)) < cfg.identity_fraction
      theta = jnp.where(keep, jnp.eye(2, 3)[None], theta)
      source = jnp.broadcast_to(target, (b,) + target.shape[1:])
      driving = _warp_affine(theta, source)
      # The warp moves the landmarks in the coordinate grid's convention (that of theta); the pair is a
      # clip whose onset is the target itself, so the seed's onset prior gives both passes its keypoints.
      lm = jnp.broadcast_to(landmarks, (b,) + landmarks.shape[1:])
      lm_d = geometry.grid_to_px(_inverse_affine_points(theta, geometry.px_to_grid(lm, size)), size)
      prior_s = keypoint_prior(model_config, lm, lm)
      prior_d = keypoint_prior(model_config, lm_d, lm)
      kp_s = kp_detector.apply(v["kp_detector"], source, prior=prior_s, train=False)
      kp_d = kp_detector.apply(v["kp_detector"], driving, prior=prior_d, train=False)
      kp_s = jax.tree.map(jax.lax.stop_gradient, kp_s)
      kp_d = jax.tree.map(jax.lax.stop_gradient, kp_d)
      gv = dict(v["generator"])
      gv["params"] = gen_params
      out = generator.apply(gv, source, kp_source=kp_s, kp_driving=kp_d, train=False)
      pred = out["prediction"].astype(jnp.float32)
      loss = cfg.l1 * jnp.mean(jnp.abs(pred - driving))
      if use_vgg:
        loss += perceptual.perceptual_loss(
          vgg,
          pyramid_lib.image_pyramid(pred, scales),
          pyramid_lib.image_pyramid(driving, scales),
          scales,
          cfg.perceptual,
        )
      return loss

    def step(gen_params, opt_state, v, target, landmarks, rng, vgg_layers):
      loss, grads = jax.value_and_grad(loss_fn)(gen_params, v, target, landmarks, rng, vgg_layers)
      updates, opt_state = self.optimizer.update(grads, opt_state, gen_params)
      return optax.apply_updates(gen_params, updates), opt_state, loss

    self._step = jax.jit(step)
    self._loss = jax.jit(loss_fn)

  def run(
    self,
    variables: dict,
    target,
    target_landmarks=None,
    steps: int | None = None,
    return_losses: bool = False,
  ):
    """Returns a copy of `variables` with the generator fine-tuned on `target` (H,W,3) float [0,1] or uint8."""
    cfg = self.cfg
    steps = cfg.steps if steps is None else int(steps)
    target = np.asarray(target)
    if target.dtype == np.uint8:
      target = target.astype(np.float32) / 255.0
    s = int(self.model_config.image_size)
    if target.shape != (s, s, 3):
      raise ValueError(f"personalize: target must be ({s}, {s}, 3), got {target.shape}")
    check_inputs(self.model_config, image=target[None], where="personalize: target")
    if self.uses_prior:
      if target_landmarks is None:
        raise ValueError(
          "personalize: this model uses prior keypoints; pass target_landmarks (68, 2) px"
        )
      landmarks = jnp.asarray(np.asarray(target_landmarks, np.float32).reshape(1, 68, 2))
    else:
      landmarks = jnp.zeros((1, 68, 2), jnp.float32)
    v = {k: variables[k] for k in ("kp_detector", "generator")}
    params = v["generator"]["params"]
    opt_state = self.optimizer.init(params)
    tgt = jnp.asarray(target[None], jnp.float32)
    rng = jax.random.PRNGKey(cfg.seed)
    losses = []
    for _ in range(steps):
      rng, sub = jax.random.split(rng)
      params, opt_state, loss = self._step(
        params, opt_state, v, tgt, landmarks, sub, None if self.vgg is None else self.vgg["layers"]
      )
      if return_losses:
        losses.append(float(loss))
    out = dict(variables)
    out["generator"] = dict(variables["generator"])
    out["generator"]["params"] = params
    return (out, losses) if return_losses else out


def personalize(
  models,
  variables,
  model_config,
  target,
  target_landmarks=None,
  steps: int = 150,
  config: PersonalizeConfig | None = None,
) -> dict:
  """One call: the variables with the generator fine-tuned on `target` (see `Personalizer`)."""
  return Personalizer(models, model_config, config).run(
    variables, target, target_landmarks, steps=steps
  )
