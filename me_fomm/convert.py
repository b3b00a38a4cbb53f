"""Original PyTorch checkpoints (FOMM / the MEGC2021 seed) -> me_fomm variables.

Reads the `generator`, `kp_detector` and `discriminator` state dicts of a `.pth.tar` (through the optional
torch extra, `weights_only=True`) or of an `.npz` (keys `state/<module>/<name>` as in the reference fixtures
or `<module>/<name>`; no torch needed) and maps every tensor onto the variables of a model config:

  torch name                                   ours
  a.down_blocks.0.conv.weight (O, I, kh, kw)   params    a/down_blocks_0/conv/kernel (kh, kw, I, O)
  ....bias                                     params    .../bias
  ....norm.weight / .bias                      params    .../norm/scale, bias      (BatchNorm, InstanceNorm)
  ....norm.running_mean / running_var          batch_stats .../norm/mean, var
  ....norm.num_batches_tracked                 (dropped: the momentum is fixed)
  discs.1....conv.weight_orig                  params    discs_1/.../conv/kernel = weight_orig / sigma
  ....weight_u / weight_v                      batch_stats .../conv/u, v
  learn.weight, learn1.weight (tip24 prior)    params    prior/learn/kernel, prior/learn1/kernel
  down.weight (anti-aliasing blur)             (checked against our fixed Gaussian, not stored)

Spectral norm is folded with sigma = u^T W v from the stored u, v (what torch's eval forward divides by).
The stored u, v are kept: on the folded kernel u^T W v = 1, so our eval forward reproduces the original
exactly, and fine-tuning continues the power iteration from the same singular vectors.
Anything that does not fit the chosen config (missing, unexpected or wrongly shaped tensors) is reported
in one ValueError listing all of it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np

from me_fomm.model import abstract_variables, build_models, pyramid
from me_fomm.model import discriminator as disc_lib

MODULES = ("kp_detector", "generator", "discriminator")
_BLUR_BUFFERS = {
  "kp_detector": ("down.weight", "kp_detector"),
  "generator": ("dense_motion_network.down.weight", "generator.dense_motion"),
}


def load_state_dicts(path: str) -> dict[str, dict[str, np.ndarray]]:
  """{'kp_detector': {torch_name: array}, 'generator': ..., 'discriminator': ...} from .pth(.tar) or .npz."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"convert: checkpoint {path!r} does not exist")
  out: dict[str, dict[str, np.ndarray]] = {m: {} for m in MODULES}
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as data:
      for key in data.files:
        parts = key.split("/")
        if parts[0] == "state":
          parts = parts[1:]
        if len(parts) == 2 and parts[0] in MODULES:
          out[parts[0]][parts[1]] = np.asarray(data[key])
  elif path.endswith((".pth.tar", ".pth", ".pt", ".tar")):
    try:
      import torch  # the optional `convert` extra; only needed for PyTorch pickles
    except ImportError as e:
      raise ImportError(
        "convert: reading a PyTorch checkpoint needs torch (pip install 'me_fomm[convert]'), "
        "or export the state dicts to .npz"
      ) from e
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for module in MODULES:
      for name, tensor in (ckpt.get(module) or {}).items():
        name = name[len("module.") :] if name.startswith("module.") else name  # DataParallel prefix
        out[module][name] = tensor.detach().cpu().numpy()
  else:
    raise ValueError(f"convert: {path!r} is neither .npz nor .pth.tar")
  if not any(out.values()):
    raise ValueError(
      f"convert: {path!r} holds no kp_detector/generator/discriminator state dicts "
      "(npz keys must be 'state/<module>/<name>' or '<module>/<name>')"
    )
  return out


def _our_path(torch_name: str) -> tuple[str, list[str], str] | None:
  """(collection, module path, leaf) for a torch name, or None for tensors we drop."""
  parts = torch_name.split(".")
  if parts[0] in (
    "learn",
    "learn1",
  ):  # tip24's adaptive weighted prior convs sit in our 'prior' submodule
    parts = ["prior"] + parts
  leaf = parts[-1]
  mods: list[str] = []
  for p in parts[:-1]:
    # ModuleList indices and ModuleDict keys of the discriminator scales join their parent: down_blocks_0.
    if mods and (p.isdigit() or mods[-1] == "discs"):
      mods[-1] = f"{mods[-1]}_{p}"
    else:
      mods.append(p)
  if leaf == "num_batches_tracked":
    return None
  table = {
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
    "weight_orig": ("params", "kernel"),
    "weight_u": ("batch_stats", "u"),
    "weight_v": ("batch_stats", "v"),
    "bias": ("params", "bias"),
  }
  if leaf in table:
    coll, name = table[leaf]
    return coll, mods, name
  if leaf == "weight":
    return "params", mods, "kernel_or_scale"
  return "params", mods, leaf


def _flatten(tree, prefix=()):
  if isinstance(tree, Mapping):
    for k, v in tree.items():
      yield from _flatten(v, prefix + (k,))
  else:
    yield prefix, tree


def _set(tree: dict, path, value):
  for p in path[:-1]:
    tree = tree.setdefault(p, {})
  tree[path[-1]] = value


def convert_state_dicts(
  state: Mapping[str, Mapping[str, np.ndarray]], cfg, modules=MODULES
) -> dict[str, Any]:
  """Maps torch state dicts onto the variables of `cfg`; raises one ValueError listing every misfit."""
  models = build_models(cfg)
  expected = jax.tree_util.tree_map(lambda x: x, abstract_variables(models, cfg))
  variables: dict[str, Any] = {}
  problems: list[str] = []
  for module in modules:
    sd = dict(state.get(module, {}))
    exp = {path: leaf for path, leaf in _flatten(dict(expected[module]))}
    seen = set()
    blur = _BLUR_BUFFERS.get(module)
    if blur and blur[0] in sd:
      arr = sd.pop(blur[0])
      sub = cfg.kp_detector if blur[1] == "kp_detector" else cfg.generator.dense_motion
      ref = pyramid.gaussian_kernel(sub.scale_factor) if sub.scale_factor != 1 else None
      want = None if ref is None else (cfg.num_channels, 1) + ref.shape
      if want is None or arr.shape != want:
        problems.append(
          f"{module}/{blur[0]}: shape {arr.shape}, the config's scale_factor="
          f"{sub.scale_factor} implies {want}"
        )
      elif not np.allclose(arr, ref[None, None], atol=1e-6):
        problems.append(
          f"{module}/{blur[0]}: the anti-aliasing kernel differs from the Gaussian of "
          f"scale_factor={sub.scale_factor}"
        )
    out: dict[str, Any] = {}
    sn_sigma: dict[tuple, float] = {}
    for name in sorted(sd):  # weight_orig needs its _u/_v: collect sigma first
      if name.endswith(".weight_orig"):
        base = name[: -len("weight_orig")]
        if base + "weight_u" in sd and base + "weight_v" in sd:
          sn_sigma[name] = disc_lib.spectral_sigma(
            sd[name], sd[base + "weight_u"], sd[base + "weight_v"]
          )
    for name, arr in sorted(sd.items()):
      mapped = _our_path(name)
      if mapped is None:
        continue
      coll, mods, leaf = mapped
      arr = np.asarray(arr)
      torch_shape = tuple(arr.shape)
      if leaf == "kernel_or_scale":
        leaf = "kernel" if arr.ndim == 4 else "scale"
      if leaf == "kernel" and arr.ndim == 4:
        if name.endswith(".weight_orig"):
          if name not in sn_sigma:
            problems.append(f"{module}/{name}: spectral-norm weight without its weight_u/weight_v")
            continue
          arr = arr / sn_sigma[name]
        arr = np.transpose(arr, (2, 3, 1, 0))  # OIHW -> HWIO
      key = (coll, *mods, leaf)
      if key not in exp:
        problems.append(
          f"{module}/{name}: unexpected (no {'/'.join(key)} in the {cfg.variant!r} config)"
        )
        continue
      seen.add(key)
      if tuple(arr.shape) != tuple(exp[key].shape):
        problems.append(
          f"{module}/{name}: shape {torch_shape} (ours {tuple(arr.shape)}) does not fit "
          f"{'/'.join(key)} of shape {tuple(exp[key].shape)}"
        )
        continue
      _set(out, key, arr.astype(np.float32))
    for key in sorted(set(exp) - seen):
      problems.append(f"{module}: missing {'/'.join(key)} (shape {tuple(exp[key].shape)})")
    variables[module] = out
  if problems:
    raise ValueError(
      f"convert: the checkpoint does not fit the {cfg.variant!r} config "
      f"({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
    )
  return variables


def convert_checkpoint(
  input_path: str, cfg, output_dir: str, overwrite: bool = False
) -> dict[str, Any]:
  """Converts `input_path` for `cfg` and writes an Orbax checkpoint with me_fomm.checkpoint.save_models."""
  from me_fomm import checkpoint  # imported late: orbax is only needed when writing

  if os.path.exists(output_dir) and os.listdir(output_dir):
    if not overwrite:
      raise FileExistsError(
        f"convert: output directory {output_dir!r} is not empty; pass --overwrite to replace it"
      )
    import shutil

    shutil.rmtree(output_dir)
  state = load_state_dicts(input_path)
  absent = [m for m in MODULES if not state[m]]
  if absent:
    raise ValueError(f"convert: {input_path!r} lacks the state dicts of {absent}")
  variables = convert_state_dicts(state, cfg)
  checkpoint.save_models(
    output_dir, variables, cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg), step=0
  )
  return variables
