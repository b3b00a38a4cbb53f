"""The two functions a deployed model runs, as pure functions of named float32 arrays.

* `source`: the keypoint detector on B images, `image` (B, S, S, C) in [0, 1] (and, for facial-prior
  variants, `landmarks` (B, 68, 2), dlib pixels of those images) -> `kp_value` (B, K, 2),
  `kp_jacobian` (B, K, 2, 2). Run it on the target photo and on the driving clip's onset frame.
* `animate`: one target and B driving frames -> `prediction` (B, S, S, C) in [0, 1], `kp_driving` and
  `kp_norm` (B, K, 2): the driving keypoints, FOMM's relative transfer against the onset and source
  keypoints (`me_fomm.model.motion_transfer.normalize_kp`), the dense motion and the generator, as one
  batch of `me_fomm.generate.animate.Animator` computes it. Prior variants also take `driving_landmarks`
  (B, 68, 2) and `onset_landmarks` (1, 68, 2); the config's `prior_frames` rule picks which of them each
  frame's AU keypoints come from (`me_fomm.prior.inputs.keypoint_prior`), so a caller passes both.

dlib stays outside: the landmarks are inputs, and the 68 -> 18 AU keypoint -> region mask arithmetic is in
the graph. `BATCH` names the batch axis in the input tables (a symbolic dimension unless fixed).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import ml_collections

from me_fomm.model.motion_transfer import normalize_kp
from me_fomm.prior.au_keypoints import NUM_LANDMARKS
from me_fomm.prior.inputs import keypoint_prior

BATCH = "B"


@dataclasses.dataclass(frozen=True)
class Function:
  """One exported function: `fn(**inputs) -> {name: array}` with `inputs`/`outputs` as ordered
  {name: shape} tables (shapes hold `BATCH` for the batch axis)."""

  name: str
  fn: Callable
  inputs: dict
  outputs: dict


def export_config(model_config) -> ml_collections.ConfigDict:
  """The model config the export runs: the checkpoint's, computing in float32.

  Raises ValueError for a model the export does not cover. `dtype` is the training compute dtype
  (parameters are float32 either way); runtimes compute a bfloat16 graph poorly on CPU, and the export is
  checked against the JAX model in float32.
  """
  cfg = ml_collections.ConfigDict(model_config.to_dict())
  if not cfg.estimate_jacobian:
    raise ValueError(
      "this checkpoint's model has estimate_jacobian=False, which export (like `me-fomm generate`) "
      "does not cover: the relative motion transfer needs the keypoint Jacobians; export a model "
      "trained with estimate_jacobian=True"
    )
  cfg.dtype = "float32"
  return cfg


def uses_landmarks(cfg) -> bool:
  return cfg.kp_mode == "prior"


def functions(models, variables, model_config) -> tuple[Function, Function]:
  """(source, animate) of a model; `variables` are baked in as constants of the graphs."""
  cfg = export_config(model_config)
  s, c, k = int(cfg.image_size), int(cfg.num_channels), int(cfg.num_kp)
  kp_v, gen_v = variables["kp_detector"], variables["generator"]
  prior = uses_landmarks(cfg)

  def keypoints(image, prior_value):
    p = None if prior_value is None else {"value": prior_value}
    kp = models.kp_detector.apply(kp_v, image, prior=p, train=False)
    return {k: kp[k].astype(jnp.float32) for k in ("value", "jacobian")}

  def source(image, landmarks=None):
    # A still image is its own onset (as `Animator` treats the target photo).
    p = keypoint_prior(cfg, landmarks, landmarks) if prior else None
    kp = keypoints(image, None if p is None else p["value"])
    return {"kp_value": kp["value"], "kp_jacobian": kp["jacobian"]}

  def animate(
    source,
    source_kp_value,
    source_kp_jacobian,
    onset_kp_value,
    onset_kp_jacobian,
    driving,
    driving_landmarks=None,
    onset_landmarks=None,
  ):
    b = driving.shape[0]
    tile = lambda x: jnp.broadcast_to(x, (b,) + x.shape[1:])
    kp_s = {"value": tile(source_kp_value), "jacobian": tile(source_kp_jacobian)}
    kp_0 = {"value": tile(onset_kp_value), "jacobian": tile(onset_kp_jacobian)}
    p = keypoint_prior(cfg, driving_landmarks, onset_landmarks) if prior else None
    kp_d = keypoints(driving, None if p is None else p["value"])
    kp_n = normalize_kp(kp_s, kp_d, kp_0)
    out = models.generator.apply(gen_v, source, kp_source=kp_s, kp_driving=kp_n, train=False)
    return {
      "prediction": jnp.clip(out["prediction"].astype(jnp.float32), 0.0, 1.0),
      "kp_driving": kp_d["value"],
      "kp_norm": kp_n["value"],
    }

  image = (BATCH, s, s, c)
  lms = {"landmarks": (BATCH, NUM_LANDMARKS, 2)} if prior else {}
  source_fn = Function(
    "source",
    source,
    {"image": image, **lms},
    {"kp_value": (BATCH, k, 2), "kp_jacobian": (BATCH, k, 2, 2)},
  )
  one = {"value": (1, k, 2), "jacobian": (1, k, 2, 2)}
  animate_inputs = {"source": (1, s, s, c)}
  animate_inputs.update(
    {f"{who}_kp_{f}": shape for who in ("source", "onset") for f, shape in one.items()}
  )
  animate_inputs["driving"] = image
  if prior:
    animate_inputs["driving_landmarks"] = (BATCH, NUM_LANDMARKS, 2)
    animate_inputs["onset_landmarks"] = (1, NUM_LANDMARKS, 2)
  animate_fn = Function(
    "animate",
    animate,
    animate_inputs,
    {"prediction": image, "kp_driving": (BATCH, k, 2), "kp_norm": (BATCH, k, 2)},
  )
  return source_fn, animate_fn


def fixed(shape: tuple, batch) -> tuple:
  """`shape` with `BATCH` replaced by `batch` (an int, or a symbolic dimension)."""
  return tuple(batch if d == BATCH else d for d in shape)


def animate_inputs(kp: dict, source, driving, driving_landmarks=None, onset_landmarks=None) -> dict:
  """The animation's inputs from the source pass's outputs `kp` on [target, onset frame] (a batch of
  two), the target image (1, S, S, C), the driving frames and, for prior variants, their landmarks and
  the onset frame's (1, 68, 2)."""
  inputs = {
    "source": source,
    "source_kp_value": kp["kp_value"][:1],
    "source_kp_jacobian": kp["kp_jacobian"][:1],
    "onset_kp_value": kp["kp_value"][1:2],
    "onset_kp_jacobian": kp["kp_jacobian"][1:2],
    "driving": driving,
  }
  if driving_landmarks is not None:
    inputs.update(driving_landmarks=driving_landmarks, onset_landmarks=onset_landmarks)
  return inputs
