"""Animate a target face with a driving clip: keypoints, motion transfer, generator, in jit-compiled batches.

Per frame t of the driving clip (FOMM, Siarohin et al. 2019, Sec. 3 and its demo's relative mode):

    kp_s   = KP(target)                        once
    kp_d0  = KP(driving[reference])            once (the clip's onset frame: the neutral face)
    kp_dt  = KP(driving[t])                    batched over t
    kp_t   = normalize_kp(kp_s, kp_dt, kp_d0)  relative motion: kp_s + (kp_dt - kp_d0), J_dt J_d0^-1 J_s
    out_t  = G(target, kp_s, kp_t)

Facial-prior variants (`kp_mode='prior'`) give the keypoint detector the 18 AU keypoints as `prior`
(`me_fomm.prior.inputs.keypoint_prior`, as training does):
* source pass: the target's own AU keypoints (from its dlib landmarks);
* driving pass, `prior_frames='onset'` (the MEGC2021 seed): every frame gets the AU keypoints of the clip's
  onset frame. This is what the seed's animate.py does (its `driving_keypoint` is one keypoint file per clip,
  made by kpmaker.py from the clip's first frame), so with relative motion the keypoint *values* do not move
  and the motion is carried entirely by the Jacobians J_dt J_d0^-1;
* `prior_frames='per_frame'` (tip24): every frame gets its own AU keypoints, so values move too.

Driving by landmarks alone (`driving_frames=None`: an AU-driven clip, `me_fomm.generate.driving.AuMotion`)
needs keypoints that follow the landmarks (`me_fomm.prior.inputs.follows_landmarks`: tip24). There is no
driving image to read keypoints from, so the driving keypoints are built from the landmark track: values
`keypoint_prior` of each frame's landmarks, Jacobians J_dt = A_t J_s with A_t the local affine map of the
landmark motion around each keypoint (`me_fomm.prior.inputs.landmark_jacobians`, FOMM's first-order
motion model taken from the landmarks), and the reference frame's keypoints = (its values, J_s). Relative
transfer then gives kp_t = kp_s + (value_t - value_0), the values a driving clip with these landmarks would
give, and J = A_t J_s, the Jacobian the landmarks imply in place of the one read from a driving image.

`regions` (`me_fomm.prior.au_keypoints.REGIONS`) keeps the motion in those regions' keypoints only (the
others stay the target's) and applies `magnify` there; it needs AU keypoints (seed, tip24).

One program is compiled per (batch size, flags); the last batch is padded by repeating its last frame, so a
clip of any length reuses it. Batch sizes are capped at the next power of two of the clip length, so short
clips do not pay for a large padded batch while the number of programs stays logarithmic.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.data.images import pad_rows
from me_fomm.model import check_inputs
from me_fomm.prior.au_keypoints import region_keypoints
from me_fomm.prior.inputs import follows_landmarks, keypoint_prior, landmark_jacobians


def check_landmark_driving(model_config) -> None:
  """ValueError (one line, naming the variant that can) unless the model can be driven by landmarks alone."""
  if follows_landmarks(model_config):
    return
  how = (
    "onset prior keypoints: their values stay at the onset frame and the motion is read from the "
    "driving image"
    if model_config.kp_mode == "prior"
    else "learned keypoints, read from the driving image"
  )
  raise ValueError(
    "driving by landmarks alone (AU codes) needs keypoints that follow each frame's landmarks: a "
    f"tip24 checkpoint (per-frame prior keypoints, the demo's default); this one is "
    f"{model_config.variant} ({how})"
  )


def _next_pow2(n: int) -> int:
  return 1 << max(0, int(n - 1).bit_length())


@dataclasses.dataclass
class Animation:
  """Everything one animation produced, NumPy on the host.

  prediction: float32 (T, H, W, 3) in [0, 1]; kp_source: (K, 2); kp_driving, kp_norm: (T, K, 2)
  (normalised [-1, 1]; kp_norm are the keypoints the generator was driven with).
  """

  prediction: np.ndarray
  kp_source: np.ndarray
  kp_driving: np.ndarray
  kp_norm: np.ndarray


class Animator:
  """Holds the compiled keypoint and frame programs for one model and one set of transfer flags.

  Args:
    models: `me_fomm.model.build_models(cfg)`.
    variables: their variables (`kp_detector`, `generator`; the discriminator is not used).
    model_config: the model config (kp_mode, prior_frames, image_size).
    relative: relative motion transfer (default, FOMM demo `--relative`); False = absolute keypoints.
    adapt_scale: scale the relative movement by the ratio of the keypoint convex-hull areas.
    magnify: motion magnification alpha (1 = as driven); see `normalize_kp`.
    batch_size: frames per compiled batch.
    regions: face regions whose keypoints move (e.g. ('mouth', 'brows')); None = all.
  """

  def __init__(
    self,
    models,
    variables,
    model_config,
    relative: bool = True,
    adapt_scale: bool = False,
    magnify: float = 1.0,
    batch_size: int = 32,
    regions=None,
  ):
    from me_fomm.model.motion_transfer import movement_scale, normalize_kp

    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not np.isfinite(magnify) or magnify <= 0:
      raise ValueError(f"magnify must be a positive number (1 = motion as driven), got {magnify}")
    missing = [k for k in ("kp_detector", "generator") if k not in variables]
    if missing:
      raise ValueError(f"variables lack {missing}; load them with me_fomm.checkpoint.load_models")
    self.models = models
    self.config = model_config
    self.variables = {k: variables[k] for k in ("kp_detector", "generator")}
    self.batch_size = int(batch_size)
    self.uses_prior = model_config.kp_mode == "prior"
    self.image_size = int(model_config.image_size)
    kp_detector, generator = models.kp_detector, models.generator
    alpha = magnify
    if regions:
      if not self.uses_prior:
        raise ValueError(
          f"--regions needs AU keypoints (variants seed, tip24); this checkpoint's keypoints are "
          f"learned (variant {model_config.variant})"
        )
      # Per keypoint: magnify inside the regions, no motion outside (normalize_kp's alpha = 0).
      alpha = np.where(region_keypoints(regions), magnify, 0.0).astype(np.float32)

    def keypoints(v, image, prior_value):
      prior = None if prior_value is None else {"value": prior_value}
      kp = kp_detector.apply(v["kp_detector"], image, prior=prior, train=False)
      return {
        "value": kp["value"].astype(jnp.float32),
        "jacobian": kp["jacobian"].astype(jnp.float32),
      }

    def encode(v, source):
      return generator.apply(v["generator"], source, train=False)["encoded"]

    def render(v, source, encoded, kp_source, kp_initial, kp_d, scale):
      b = kp_d["value"].shape[0]
      tile = lambda x: jnp.broadcast_to(x, (b,) + x.shape[1:])
      kp_s = jax.tree_util.tree_map(tile, kp_source)
      kp_0 = jax.tree_util.tree_map(tile, kp_initial)
      # `scale` is the adapt-scale factor, computed once per clip outside jit (hull areas in NumPy).
      kp_n = normalize_kp(
        kp_s,
        kp_d,
        kp_0,
        adapt_movement_scale=scale,
        use_relative_movement=relative,
        use_relative_jacobian=relative,
        magnify=alpha,
      )
      out = generator.apply(
        v["generator"], source, kp_source=kp_s, kp_driving=kp_n, train=False, encoded=encoded
      )
      pred = jnp.clip(out["prediction"].astype(jnp.float32), 0.0, 1.0)
      return pred, kp_d["value"], kp_n["value"]

    def frames(v, source, encoded, kp_source, kp_initial, driving, prior_value, scale):
      kp_d = keypoints(v, driving, prior_value)
      return render(v, source, encoded, kp_source, kp_initial, kp_d, scale)

    # The target is encoded once per `run` and its features reused by every batch of frames.
    self._encode = jax.jit(encode)
    self._keypoints = jax.jit(keypoints)
    self._frames = jax.jit(frames)
    self._render = jax.jit(render)
    self.adapt_scale = adapt_scale
    self._movement_scale = movement_scale

  # ------------------------------------------------------------------------------------------ helpers
  def _check_frames(self, x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.uint8:
      x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    s = self.image_size
    if x.shape[-3:] != (s, s, self.config.num_channels):
      raise ValueError(
        f"{name}: frames must be ({s}, {s}, {self.config.num_channels}) for this model "
        f"(image_size {s}), got {x.shape}; crop/resize them first (me_fomm.generate.target)"
      )
    return x

  def _priors(self, target_landmarks, driving_landmarks, t: int, reference: int):
    """The keypoint detector's prior of the target ({'value': (1, 18, 2)}) and of the driving frames
    ({'value': (t, 18, 2)}), or None, None for learned keypoints."""
    if not self.uses_prior:
      return None, None
    if target_landmarks is None or driving_landmarks is None:
      raise ValueError(
        "this model uses facial-prior keypoints (kp_mode='prior'): pass target_landmarks "
        "(68, 2) and driving_landmarks (T, 68, 2), dlib pixels of the frames given"
      )
    tl = np.asarray(target_landmarks, np.float32)
    dl = np.asarray(driving_landmarks, np.float32)
    if tl.shape != (68, 2) or dl.shape != (t, 68, 2):
      raise ValueError(
        f"landmarks: target must be (68, 2) and driving ({t}, 68, 2); got {tl.shape} and {dl.shape}"
      )
    # The target photo is its own onset; the driving clip's onset is the reference frame.
    source = keypoint_prior(self.config, tl[None], tl[None])
    driving = keypoint_prior(self.config, dl, dl[reference])
    return source, driving

  def batch_for(self, num_frames: int) -> int:
    return min(self.batch_size, _next_pow2(num_frames))

  def _landmark_motion(self, target_landmarks, driving_landmarks, reference: int):
    """(frames, target prior, driving keypoint values (T, K, 2), local affine maps (T, K, 2, 2)) of a
    landmark track that drives without frames (see the module doc)."""
    check_landmark_driving(self.config)
    if target_landmarks is None or driving_landmarks is None:
      raise ValueError(
        "driving by landmarks: pass target_landmarks (68, 2) and driving_landmarks (T, 68, 2)"
      )
    tl = np.asarray(target_landmarks, np.float32)
    dl = np.asarray(driving_landmarks, np.float32)
    if tl.shape != (68, 2) or dl.ndim != 3 or dl.shape[1:] != (68, 2) or not len(dl):
      raise ValueError(
        f"landmarks: target must be (68, 2) and driving (T, 68, 2); got {tl.shape} and {dl.shape}"
      )
    if not 0 <= reference < len(dl):
      raise ValueError(f"reference frame {reference} is outside the track's {len(dl)} frames")
    source = keypoint_prior(self.config, tl[None], tl[None])
    values = keypoint_prior(self.config, dl, dl[reference])["value"]
    if not (np.isfinite(values).all() and np.isfinite(dl).all()):
      raise ValueError("driving_landmarks: NaN or inf in the landmark track")
    return len(dl), source, values, landmark_jacobians(dl, dl[reference])

  # ------------------------------------------------------------------------------------------ run
  def run(
    self,
    target,
    driving_frames=None,
    target_landmarks=None,
    driving_landmarks=None,
    reference: int = 0,
    progress: bool | str = False,
  ) -> Animation:
    """Animates `target` (H, W, 3) with `driving_frames` (T, H, W, 3), float [0, 1] or uint8, or, with
    `driving_frames=None`, with the landmark track `driving_landmarks` alone (tip24; see the module doc).

    Args:
      target_landmarks, driving_landmarks: dlib 68 landmarks in pixels (kp_mode 'prior' only).
      reference: index of the driving frame the relative motion is measured from (the onset).
      progress: show a tqdm bar (a string is used as its description).
    """
    target = self._check_frames(target, "target")
    if target.ndim != 3:
      raise ValueError(f"target must be (H, W, C); got {target.shape}")
    v = self.variables
    source = jnp.asarray(target[None])
    if driving_frames is None:
      t, src_prior, values, affine = self._landmark_motion(
        target_landmarks, driving_landmarks, reference
      )
      check_inputs(self.config, image=target[None], prior=src_prior, where="target")
      kp_source = self._keypoints(v, source, jnp.asarray(src_prior["value"]))
      j_s = np.asarray(kp_source["jacobian"])
      kp_initial = {
        "value": jnp.asarray(values[reference][None]),
        "jacobian": kp_source["jacobian"],
      }
      jacobians = affine @ j_s  # J_dt = A_t J_s, so J_dt J_d0^-1 = A_t

      def batch(i, m, b):
        kp_d = {"value": jnp.asarray(pad_rows(values[i : i + m], b))}
        kp_d["jacobian"] = jnp.asarray(pad_rows(jacobians[i : i + m], b))
        return self._render(v, source, encoded, kp_source, kp_initial, kp_d, scale)

    else:
      driving = self._check_frames(driving_frames, "driving_frames")
      if driving.ndim != 4:
        raise ValueError(f"driving_frames must be (T, H, W, C); got {driving.shape}")
      t = driving.shape[0]
      if t < 1:
        raise ValueError("driving_frames is empty")
      if not 0 <= reference < t:
        raise ValueError(f"reference frame {reference} is outside the clip's {t} frames")
      src_prior, drv_prior = self._priors(target_landmarks, driving_landmarks, t, reference)
      # Frames, prior keypoints and their batch sizes checked before anything is compiled.
      check_inputs(self.config, image=target[None], prior=src_prior, where="target")
      check_inputs(self.config, image=driving, prior=drv_prior, where="driving_frames")
      src_value = None if src_prior is None else jnp.asarray(src_prior["value"])
      drv_value = None if drv_prior is None else drv_prior["value"]
      kp_source = self._keypoints(v, source, src_value)
      kp_initial = self._keypoints(
        v,
        jnp.asarray(driving[reference][None]),
        None if drv_value is None else jnp.asarray(drv_value[reference][None]),
      )

      def batch(i, m, b):  # padded with the last frame so the one compiled program is reused
        prior = None if drv_value is None else jnp.asarray(pad_rows(drv_value[i : i + m], b))
        chunk = jnp.asarray(pad_rows(driving[i : i + m], b))
        return self._frames(v, source, encoded, kp_source, kp_initial, chunk, prior, scale)

    # After the inputs' checks: the target's features, which every batch below reuses.
    encoded = self._encode(v, source)
    scale = jnp.float32(1.0)
    if self.adapt_scale:
      # sqrt(hull area of the target's keypoints / that of the onset frame's), FOMM's adapt_movement_scale.
      scale = jnp.asarray(self._movement_scale(kp_source, kp_initial)[0], jnp.float32)
    b = self.batch_for(t)
    preds, kps_d, kps_n = [], [], []
    if progress:
      from tqdm.auto import tqdm

      bar = tqdm(
        total=t,
        desc=progress if isinstance(progress, str) else "generating",
        unit="frame",
        leave=False,
      )
    for i in range(0, t, b):
      m = min(b, t - i)
      pred, kd, kn = batch(i, m, b)
      preds.append(np.asarray(pred)[:m])
      kps_d.append(np.asarray(kd)[:m])
      kps_n.append(np.asarray(kn)[:m])
      if progress:
        bar.update(m)
    if progress:
      bar.close()
    return Animation(
      prediction=np.concatenate(preds),
      kp_source=np.asarray(kp_source["value"])[0],
      kp_driving=np.concatenate(kps_d),
      kp_norm=np.concatenate(kps_n),
    )


def animate(
  models,
  variables,
  model_config,
  target,
  driving_frames=None,
  target_landmarks=None,
  driving_landmarks=None,
  relative: bool = True,
  adapt_scale: bool = False,
  magnify: float = 1.0,
  batch_size: int = 32,
  reference: int = 0,
  progress: bool | str = False,
  regions=None,
) -> np.ndarray:
  """DESIGN.md's one-call animation: returns float32 (T, H, W, C) in [0, 1] (see `Animator.run`)."""
  animator = Animator(
    models,
    variables,
    model_config,
    relative=relative,
    adapt_scale=adapt_scale,
    magnify=magnify,
    batch_size=batch_size,
    regions=regions,
  )
  return animator.run(
    target,
    driving_frames,
    target_landmarks,
    driving_landmarks,
    reference=reference,
    progress=progress,
  ).prediction
