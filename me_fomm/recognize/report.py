"""What `me-fomm recognize` prints and writes: the UF1/UAR table (composite and per corpus, with and
without augmentation side by side), the JSON of every prediction, and confusion-matrix pictures."""

from __future__ import annotations

import json
import math
from typing import Mapping, Sequence

import numpy as np

from me_fomm.recognize.metrics import CLASSES

# STSTNet's LOSO results as published (Liong et al. 2019, MEGC2019 composite): (UF1, UAR).
PUBLISHED = {
  "composite": (0.7353, 0.7605),
  "smic": (0.6801, 0.7013),
  "casme2": (0.8382, 0.8686),
  "samm": (0.6588, 0.6810),
}
# Table order of the corpora (the and the paper's: composite, SMIC, CASME II, SAMM).
CORPUS_ORDER = ("smic", "casme2", "samm")


def table_rows(scores: Mapping, overall_name: str) -> list[tuple[str, str]]:
  """[(row name, key in scores)]: the overall row, then each corpus when there are several."""
  corpora = [k for k in scores if k != "overall"]
  rows = [(overall_name, "overall")]
  if len(corpora) > 1:
    ordered = [c for c in CORPUS_ORDER if c in corpora] + sorted(set(corpora) - set(CORPUS_ORDER))
    rows += [(c, c) for c in ordered]
  return rows


def _num(v) -> str:
  return "   n/a" if v is None or not math.isfinite(v) else f"{v:6.4f}"


def format_table(runs: Mapping[str, Mapping], overall_name: str, published: bool = False) -> str:
  """Plain-text table: one row per corpus, UF1 / UAR / clips per run (runs: name -> scores)."""
  names = list(runs)
  first = runs[names[0]]
  header = f"{'':18s}" + "".join(f"  {n[:22]:>22s}" for n in names)
  sub = f"{'':18s}" + "".join(f"  {'UF1':>7s} {'UAR':>7s} {'clips':>6s}" for _ in names)
  if published:
    header += f"  {'published STSTNet':>17s}"
    sub += f"  {'UF1':>8s} {'UAR':>8s}"
  lines = [header, sub]
  for row, key in table_rows(first, overall_name):
    line = f"{row:18s}"
    for n in names:
      s = runs[n].get(key, {})
      line += f"  {_num(s.get('uf1'))}  {_num(s.get('uar'))} {s.get('clips', 0):6d}"
    if published:
      ref = PUBLISHED.get("composite" if key == "overall" else key)
      line += f"  {_num(ref[0])}   {_num(ref[1])}" if ref else ""
    lines.append(line)
  return "\n".join(lines)


def _jsonable(x):
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (float, np.floating)):
    return None if not math.isfinite(float(x)) else float(x)
  if isinstance(x, np.integer):
    return int(x)
  if isinstance(x, np.ndarray):
    return _jsonable(x.tolist())
  return x


def write_json(path: str, doc: Mapping) -> None:
  """JSON with NaN as null (not computable)."""
  with open(path, "w") as f:
    json.dump(_jsonable(doc), f, indent=1, allow_nan=False)


def write_confusion_png(
  path: str, panels: Sequence[tuple[str, Sequence[Sequence[int]]]], classes=CLASSES
) -> None:
  """One confusion matrix per (title, matrix) panel, rows = true class, columns = predicted; each
  cell shows its count and the row's share."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  n = len(panels)
  cols = min(n, 4)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
  for ax in axes.flat[n:]:
    ax.axis("off")
  for ax, (title, cm) in zip(axes.flat, panels):
    cm = np.asarray(cm, np.float64)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
      for j in range(cm.shape[1]):
        colour = "white" if share[i, j] > 0.6 else "black"
        ax.text(j, i, f"{int(cm[i, j])}\n{share[i, j]:.0%}", ha="center", va="center", color=colour)
    ax.set_xticks(range(len(classes)), [c[:3] for c in classes])
    ax.set_yticks(range(len(classes)), [c[:3] for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
