"""A trained model as two deployable functions, StableHLO (`jax.export`) or ONNX (`jax2onnx`).

    result = export(model, "onnx", "exports/demo")  # model: me_fomm.generate.pipeline.load_model(...)
    exported = load("exports/demo.json")
    kp = exported.source({"image": ..., "landmarks": ...})

An export of stem `out` is three files: `out.source.<ext>` and `out.animate.<ext>` (the two functions of
`me_fomm.export.graphs`) and `out.json`, the manifest (format, opset, batch, every input and output with
its shape, and the model config). Each function file stands alone: `jax.export.deserialize` or an
onnxruntime session reads it without this package.
"""

from __future__ import annotations

import json
import os
import tempfile

from me_fomm.export import graphs, onnx_file, stablehlo

FORMATS = {"stablehlo": stablehlo, "onnx": onnx_file}


def paths(out: str, fmt: str) -> dict:
  """{'source', 'animate', 'manifest'}: the files of the export of stem `out` (a trailing `.onnx` /
  `.stablehlo` / `.json` on `out` is dropped)."""
  if fmt not in FORMATS:
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
  out = os.path.abspath(out)
  for ext in (FORMATS[fmt].EXTENSION, ".json"):
    out = out[: -len(ext)] if out.endswith(ext) else out
  ext = FORMATS[fmt].EXTENSION
  return {
    "source": f"{out}.source{ext}",
    "animate": f"{out}.animate{ext}",
    "manifest": f"{out}.json",
  }


def check_request(fmt: str, batch: int | None) -> None:
  """The format's libraries are installed and the batch is valid (one-line ValueErrors)."""
  if fmt not in FORMATS:
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
  if batch is not None and batch < 1:
    raise ValueError(f"--batch must be >= 1 (or omitted for a symbolic batch), got {batch}")
  if fmt == "onnx":
    onnx_file.require("jax2onnx")
    onnx_file.require("onnxruntime")


def check_output(out: str, fmt: str, overwrite: bool = False) -> dict:
  """The export's paths, after checking they can be written (call before any work)."""
  files = paths(out, fmt)
  folder = os.path.dirname(files["manifest"])
  existing = [p for p in files.values() if os.path.exists(p)]
  if existing and not overwrite:
    raise FileExistsError(f"{existing[0]} already exists; pass --overwrite or choose another --out")
  try:
    os.makedirs(folder, exist_ok=True)
    # A real write, not os.access: root passes access checks on a read-only file system.
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    raise ValueError(
      f"--out={out}: cannot write to the folder {folder} ({e.strerror}); choose another --out"
    ) from e
  return files


def export(
  model,
  fmt: str,
  out: str,
  batch: int | None = None,
  overwrite: bool = False,
  source_info: dict | None = None,
) -> dict:
  """Writes the export of `model` (`models`, `variables`, `config`, as `pipeline.load_model` returns);
  returns its manifest (with `files`). `batch`: fix the batch axis (default: symbolic)."""
  check_request(fmt, batch)
  files = check_output(out, fmt, overwrite)
  cfg = graphs.export_config(model.config)
  functions = graphs.functions(model.models, model.variables, cfg)
  blobs = {f.name: FORMATS[fmt].serialize(f, batch) for f in functions}
  manifest = {
    "format": fmt,
    "opset": onnx_file.OPSET if fmt == "onnx" else None,
    "batch": batch,
    "functions": {
      f.name: {
        "file": os.path.basename(files[f.name]),
        "inputs": {k: list(v) for k, v in f.inputs.items()},
        "outputs": {k: list(v) for k, v in f.outputs.items()},
      }
      for f in functions
    },
    "model_config": cfg.to_dict(),
    **(source_info or {}),
  }
  blobs["manifest"] = json.dumps(manifest, indent=1).encode()
  _write_all(files, blobs)
  return {**manifest, "files": files}


def _write_all(files: dict, blobs: dict) -> None:
  """Writes every file beside its destination first, then renames them into place: an export that
  fails part-way leaves no file behind (nor replaces an older one)."""
  staged = {}
  umask = os.umask(0)
  os.umask(umask)
  try:
    for key, data in blobs.items():
      fd, tmp = tempfile.mkstemp(prefix=".export-", dir=os.path.dirname(files[key]))
      staged[key] = tmp
      with os.fdopen(fd, "wb") as f:
        f.write(data)
      os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the export from other users
  except OSError as e:
    for tmp in staged.values():
      os.remove(tmp)
    raise ValueError(f"cannot write the export beside {files['manifest']} ({e.strerror})") from e
  for key, tmp in staged.items():
    os.replace(tmp, files[key])


class Exported:
  """A written export loaded to run: `.source(inputs)`, `.animate(inputs)` -> {name: np.ndarray}."""

  def __init__(self, manifest_path: str):
    if not os.path.isfile(manifest_path):
      raise FileNotFoundError(
        f"no export manifest at {manifest_path} (written by `me-fomm export`)"
      )
    with open(manifest_path) as f:
      self.manifest = json.load(f)
    folder = os.path.dirname(os.path.abspath(manifest_path))
    runner = FORMATS[self.manifest["format"]].Runner
    for name, info in self.manifest["functions"].items():
      with open(os.path.join(folder, info["file"]), "rb") as f:
        setattr(self, name, runner(f.read()))


def load(manifest_path: str) -> Exported:
  return Exported(manifest_path)
