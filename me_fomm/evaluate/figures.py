"""The report's figures (matplotlib, Agg): what the tables say, drawn so the sub-pixel motion can be seen.

* `trajectory_plot`: per facial region (`prior.au_keypoints.REGIONS`), the AU keypoint displacement from the
  onset over time for driving, generated, ground truth (where there is one) and the copy baseline.
  Displacements are those of `evaluate.motion` (head translation removed, in % of the face's inter-ocular
  distance), projected on the driving clip's apex displacement of each keypoint and averaged over the
  region's keypoints weighted by that apex displacement: the driving curve peaks at its apex, a generation
  that moves the same way follows it, one that moves the other way goes negative, still frames stay at 0.
* `motion_map`: |apex frame - onset frame| (mean over RGB) as a heat map over the grey face, one panel per
  clip (driving, generated, ground truth), one colour scale for all.
* `summary_chart`: the headline metrics of a protocol, model vs copy baseline vs ground truth.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from me_fomm.evaluate import motion
from me_fomm.evaluate import protocols as P

REGION_NAMES = ("brows", "eyes", "nose", "cheeks", "mouth")
STYLE = {  # row -> (label, colour, line style)
  "driving": ("driving", "#222222", "-"),
  P.MODEL: ("generated", "#1f77b4", "-"),
  P.CLIP_DRIVEN: ("clip-driven", "#9467bd", "-."),
  P.GROUND_TRUTH: ("ground truth", "#2ca02c", "--"),
  P.BASELINE: ("copy target", "#d62728", ":"),
}
HEADLINE = (
  ("motion_correlation", "AU trajectory\ncorrelation (1 = same)"),
  ("apex_ratio", "apex amplitude\nratio (1 = same)"),
  ("gt_akd", "AKD vs ground truth\n(px, lower = better)"),
  ("gt_akd_aligned", "onset-aligned AKD vs\nground truth (px)"),
  ("aed_to_target", "identity distance to\nthe target (lower)"),
)


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def region_curves(
  tracks: Mapping[str, np.ndarray], reference: int = 0, apex: int | None = None
) -> dict:
  """{row: {region: (T,) curve}} from dlib 68-landmark tracks (T, 68, 2) per row ('driving' among them).

  Curves are in % of each clip's onset inter-ocular distance (module doc); NaN where a row has no face.
  Rows whose reference frame has no face are left out. Returns {} when the driving clip cannot be read.
  """
  from me_fomm.prior.au_keypoints import REGIONS, landmarks_to_au

  disp = {}
  for who, lm in tracks.items():
    lm = np.asarray(lm, np.float64)
    if lm.ndim != 3 or not np.isfinite(lm[reference]).all():
      continue
    au = np.asarray(landmarks_to_au(lm), np.float64)
    d = motion.displacements(au, reference, motion.face_scale(lm[reference])) * 100.0
    d[~np.isfinite(au).all(axis=(1, 2))] = np.nan
    disp[who] = d
  if "driving" not in disp:
    return {}
  drv = disp["driving"]
  if apex is None or not 0 <= apex < len(drv) or not np.isfinite(drv[apex]).all():
    apex = int(np.nanargmax(np.linalg.norm(drv, axis=-1).mean(axis=1)))
  direction = drv[apex]  # (18, 2)
  out = {}
  for who, d in disp.items():
    out[who] = {}
    for region in REGION_NAMES:
      ks = list(REGIONS[region][1])
      weight = np.linalg.norm(direction[ks], axis=-1).sum()
      if weight <= 1e-12:
        out[who][region] = np.zeros(len(d))
        continue
      out[who][region] = (d[:, ks] * direction[ks]).sum(axis=(1, 2)) / weight
  return out


def trajectory_plot(
  path: str,
  tracks: Mapping[str, np.ndarray],
  reference: int = 0,
  apex: int | None = None,
  fps: float = 25.0,
  title: str = "",
) -> bool:
  """Writes the trajectory PNG (module doc) of one clip; False (nothing written) when the driving track
  has no face in its onset frame."""
  curves = region_curves(tracks, reference, apex)
  if not curves:
    return False
  plt = _pyplot()
  t = len(next(iter(curves["driving"].values())))
  ms = (np.arange(t) - reference) * 1000.0 / float(fps or 25.0)
  fig, axes = plt.subplots(1, len(REGION_NAMES), figsize=(9.5, 2.4), sharey=True, dpi=80)
  for ax, region in zip(axes, REGION_NAMES):
    for who in STYLE:
      if who not in curves:
        continue
      label, colour, ls = STYLE[who]
      ax.plot(ms, curves[who][region], ls, color=colour, label=label, lw=1.6)
    if apex is not None:
      ax.axvline((apex - reference) * 1000.0 / float(fps or 25.0), color="#bbb", lw=0.8)
    ax.axhline(0.0, color="#ddd", lw=0.8)
    ax.set_title(region, fontsize=10)
    ax.set_xlabel("ms from onset", fontsize=8)
    ax.tick_params(labelsize=7)
  axes[0].set_ylabel("% inter-ocular\nalong driving apex", fontsize=8)
  # One legend for all panels, in the title row (inside a panel it hides the curves).
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="upper right", ncol=len(labels), fontsize=7, frameon=False)
  if title:
    fig.text(0.01, 0.97, title, fontsize=9, va="top")
  fig.tight_layout(rect=(0, 0, 1, 0.9))
  fig.savefig(path)
  plt.close(fig)
  return True


def onset_difference(frames: np.ndarray, reference: int, apex: int) -> np.ndarray:
  """(H, W) mean-over-RGB |frame[apex] - frame[reference]| in [0, 1] units of uint8 or float frames."""
  f = np.asarray(frames)
  f = f.astype(np.float32) / 255.0 if f.dtype == np.uint8 else f.astype(np.float32)
  return np.abs(f[apex] - f[reference]).mean(axis=-1)


def motion_map(
  path: str, clips: Sequence[tuple[str, np.ndarray]], reference: int = 0, apex: int | None = None
) -> None:
  """Writes the apex motion map PNG: per (name, frames) panel the onset difference over the grey face."""
  plt = _pyplot()
  t = min(len(f) for _, f in clips)
  if apex is None or not 0 <= apex < t:
    apex = t // 2
  diffs = [onset_difference(f, reference, apex) for _, f in clips]
  top = max(float(max(d.max() for d in diffs)), 1e-3)
  # Sized so that it fits beside the trajectory plot in a 1400 px window.
  fig, axes = plt.subplots(1, len(clips), figsize=(1.9 * len(clips) + 0.8, 2.4), dpi=80)
  axes = np.atleast_1d(axes)
  for ax, (name, frames), d in zip(axes, clips, diffs):
    f = np.asarray(frames)
    grey = (f[reference].astype(np.float32) / (255.0 if f.dtype == np.uint8 else 1.0)).mean(-1)
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    # Opaque where the face changed, see-through where it did not: the face stays visible around the heat.
    im = ax.imshow(
      d, cmap="magma", vmin=0, vmax=top, alpha=np.clip(0.25 + 2.0 * d / top, 0.0, 0.95)
    )
    ax.set_title(name, fontsize=9)
    ax.axis("off")
  cbar = fig.colorbar(im, ax=list(axes), fraction=0.04, pad=0.02)
  cbar.ax.tick_params(labelsize=7)
  cbar.set_label("|apex - onset| (0-1)", fontsize=8)
  fig.suptitle(f"apex motion map (frame {apex} vs onset {reference})", fontsize=9)
  fig.savefig(path)
  plt.close(fig)


def summary_chart(path: str, summary: Mapping, title: str = "") -> bool:
  """Writes a bar chart of the headline metrics (those the summary has) per row; False when none."""
  rows = [who for who in (P.MODEL, P.CLIP_DRIVEN, P.BASELINE, P.GROUND_TRUTH) if who in summary]
  metrics = [(k, label) for k, label in HEADLINE if k in summary[P.MODEL]]
  if not metrics:
    return False
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(metrics), figsize=(2.4 * len(metrics), 2.8), dpi=90)
  axes = np.atleast_1d(axes)
  for ax, (k, label) in zip(axes, metrics):
    names, values, colours = [], [], []
    for who in rows:
      v = summary[who].get(k)
      if v is None or not np.isfinite(v):
        continue
      names.append(STYLE[who][0])
      values.append(float(v))
      colours.append(STYLE[who][1] if who != "driving" else "#222")
    bars = ax.bar(range(len(values)), values, color=colours)
    for b, v in zip(bars, values):
      ax.annotate(
        f"{v:.3f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7
      )
    if k in ("motion_correlation", "apex_ratio"):
      ax.axhline(1.0, color="#bbb", lw=0.8, ls="--")
    ax.set_xticks(range(len(values)), names, rotation=30, ha="right", fontsize=7)
    ax.set_title(label, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.margins(y=0.15)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return True
