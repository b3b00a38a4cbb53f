"""The action-unit motion model: how a face's 68 landmarks move over time for a FACS code such as 4+7.

Three parts, each one definition that generation (`me-fomm generate --au`), the MEGC templates, the
`au_driven` evaluation and the `synthetic_me` renderer share:

* **Face frame.** A pattern lives in the face's own frame, a similarity transform of the image: the x axis
  runs from the subject's right eye centre to the left one (mean of landmarks 36-41 and 42-47), y is
  perpendicular to it (down in an upright face), and one unit is the inter-ocular distance (IOD, between
  those two centres). A tilted or large face therefore moves the same way as an upright small one.
* **Patterns.** Per AU a (68, 2) displacement in pattern units; AUs combine by adding their patterns and
  the intensity scales the sum: displacement = intensity * scale * sum_a P_a, in IODs. The default model
  (`default_model`) is written from the FACS descriptions (`au_patterns`, scale `DEFAULT_SCALE`); a
  model fitted on a coded corpus (`au_fit`, `me-fomm fit-au`) has its patterns in IODs (scale 1).
* **Envelope.** Intensity over the frames: still until the onset, a raised-cosine rise to 1 at the apex,
  a raised-cosine fall back to 0 at the offset, still after it (`envelope`). `timing` places onset, apex
  and offset in a clip of duration x fps frames; micro-expressions last under 500 ms in all with an
  onset phase under 260 ms (Yan, Wu, Liang, Chen, Fu, "How fast are the leaked facial expressions: the
  duration of micro-expressions", J. Nonverbal Behav. 2013). The default is 300 ms with the apex at 45% of
  it, the middle of synthetic_me's 35-55%; a fitted model takes the corpus's medians.

Pixels are (x, y) as everywhere in the prior. NumPy only; the model is small and runs on the host.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

from me_fomm.prior import au_keypoints
from me_fomm.prior.au_patterns import FACS_PATTERNS

NUM_LANDMARKS = au_keypoints.NUM_LANDMARKS
FORMAT = "me_fomm.au_model/1"
# Intensity 1 moves a unit pattern vector by 3.5% of the inter-ocular distance: about 2.4 px on
# synthetic_me's 256 px faces (IOD 66-72 px), inside the 1-4 px apex amplitudes it renders, and the few
# pixels micro-expressions move landmarks by in the corpora.
DEFAULT_SCALE = 0.035
DEFAULT_DURATION_MS = 300.0
DEFAULT_APEX_FRACTION = 0.45
MICRO_EXPRESSION_MS = 500.0


# ------------------------------------------------------------------------------------------ face frame


def _check_landmarks(landmarks, name: str) -> np.ndarray:
  lm = np.asarray(landmarks, np.float64)
  if lm.shape != (NUM_LANDMARKS, 2) or not np.all(np.isfinite(lm)):
    raise ValueError(
      f"{name}: expected one face's finite dlib landmarks of shape (68, 2) pixels (x, y), got "
      f"shape {lm.shape}" + ("" if lm.shape != (NUM_LANDMARKS, 2) else " with NaN or inf")
    )
  return lm


def face_axes(landmarks) -> tuple[np.ndarray, np.ndarray]:
  """The face frame's unit axes (ex, ey) in image pixels: ex from the right to the left eye centre."""
  lm = np.asarray(landmarks, np.float64)
  right_eye, left_eye = lm[36:42].mean(0), lm[42:48].mean(0)
  ex = left_eye - right_eye
  ex = ex / max(np.linalg.norm(ex), 1e-9)
  ey = np.array([-ex[1], ex[0]])
  return ex, ey


def inter_ocular(landmarks) -> float:
  """The face frame's unit: distance between the two eye centres, in pixels."""
  lm = np.asarray(landmarks, np.float64)
  return float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))


def to_image(local: np.ndarray, landmarks) -> np.ndarray:
  """(N, 2) vectors in the face frame's axes -> image axes (rotation only, no scaling)."""
  ex, ey = face_axes(landmarks)
  return local[:, :1] * ex[None] + local[:, 1:] * ey[None]


def to_face(vectors_px: np.ndarray, landmarks) -> np.ndarray:
  """(..., 2) image-pixel vectors -> face-frame axes in IODs (the inverse of iod * to_image)."""
  ex, ey = face_axes(landmarks)
  return (np.asarray(vectors_px, np.float64) @ np.stack([ex, ey]).T) / inter_ocular(landmarks)


# ------------------------------------------------------------------------------------------ envelope


def envelope(num_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
  """(T,) intensity in [0, 1]: 0 up to the onset, raised-cosine rise to 1 at the apex, fall to 0 at the
  offset, 0 after (the synthetic_me renderer's curve)."""
  if not 0 <= onset < apex < offset < num_frames:
    raise ValueError(
      f"envelope: need 0 <= onset < apex < offset < frames, got onset {onset}, apex {apex}, "
      f"offset {offset} in {num_frames} frames"
    )
  idx = np.arange(num_frames, dtype=np.float64)
  rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((idx - onset) / (apex - onset), 0, 1))
  fall = 0.5 + 0.5 * np.cos(np.pi * np.clip((idx - apex) / (offset - apex), 0, 1))
  return np.where(idx <= apex, rise, fall)


def timing(
  duration_ms: float, fps: float, apex_fraction: float = DEFAULT_APEX_FRACTION
) -> tuple[int, int, int, int]:
  """(frames, onset, apex, offset) of a clip of duration x fps frames: neutral first and last frame."""
  if not (np.isfinite(duration_ms) and duration_ms > 0 and np.isfinite(fps) and fps > 0):
    raise ValueError(
      f"AU timing: --duration_ms and --fps must be positive, got {duration_ms} ms at {fps} fps"
    )
  if not 0 < apex_fraction < 1:
    raise ValueError(f"AU timing: the apex fraction must be in (0, 1), got {apex_fraction}")
  frames = int(round(duration_ms * fps / 1000.0))
  if frames < 3:
    raise ValueError(
      f"AU timing: {duration_ms:g} ms at {fps:g} fps is {frames} frame(s); a movement needs at least "
      "3 (onset, apex, offset): raise --duration_ms or --fps"
    )
  apex = min(max(int(round(apex_fraction * (frames - 1))), 1), frames - 2)
  return frames, 0, apex, frames - 1


# ------------------------------------------------------------------------------------------ AU codes


def parse_aus(text) -> tuple[int, ...]:
  """'4+7', 'AU4+AU7', '4,7' or (4, 7) -> (4, 7), in the order given, without repeats."""
  if isinstance(text, (list, tuple)):
    tokens = [str(t) for t in text]
  else:
    tokens = [t for t in re.split(r"[+,;\s]+", str(text or "").strip()) if t]
  out = []
  for t in tokens:
    m = re.fullmatch(r"(?:AU)?(\d+)", t.strip(), flags=re.IGNORECASE)
    if not m:
      raise ValueError(
        f"--au={text}: {t!r} is not an action unit; write FACS numbers, e.g. --au=4+7"
      )
    if int(m.group(1)) not in out:
      out.append(int(m.group(1)))
  if not out:
    raise ValueError("--au is empty; give FACS action units, e.g. --au=4+7")
  return tuple(out)


def _listing(aus: Iterable[int]) -> str:
  return ", ".join(str(a) for a in sorted(aus))


# ------------------------------------------------------------------------------------------ the model


def pattern_array(entries: Sequence) -> np.ndarray:
  """(68, 2) float64 pattern from [(landmark indices, (dx, dy)), ...] (au_patterns' table rows)."""
  out = np.zeros((NUM_LANDMARKS, 2), np.float64)
  for idx, vec in entries:
    out[list(idx)] += vec
  return out


@dataclasses.dataclass(frozen=True)
class AUModel:
  """Patterns, their scale and the envelope (see the module doc).

  Attributes:
    patterns: {AU: (68, 2) float64} in pattern units, face frame.
    scale: IODs per pattern unit at intensity 1.
    duration_ms, apex_fraction: the default timing (`timing`).
    source: where the patterns come from (the default's FACS table, or the fitted corpus).
    fit: what the fit measured (counts, held-out error), {} for the default.
  """

  patterns: Mapping[int, np.ndarray]
  scale: float = DEFAULT_SCALE
  duration_ms: float = DEFAULT_DURATION_MS
  apex_fraction: float = DEFAULT_APEX_FRACTION
  source: str = "default"
  fit: Mapping = dataclasses.field(default_factory=dict)

  @property
  def aus(self) -> tuple[int, ...]:
    return tuple(sorted(self.patterns))

  def check(self, aus: Sequence[int]) -> tuple[int, ...]:
    """`aus` as a tuple, or ValueError naming the unknown ones and what is known."""
    aus = tuple(int(a) for a in aus)
    unknown = [a for a in aus if a not in self.patterns]
    if not unknown:
      return aus
    if self.source == "default":
      raise ValueError(
        f"unknown action unit(s) {_listing(unknown)}; the vocabulary of the corpora is "
        f"{_listing(self.patterns)}"
      )
    raise ValueError(
      f"action unit(s) {_listing(unknown)} not in the AU model ({self.source}; it has "
      f"{_listing(self.patterns)}); leave out --au_model for the default patterns of every AU"
    )

  def combine(self, aus: Sequence[int]) -> np.ndarray:
    """(68, 2) sum of the AUs' patterns in pattern units (in the order given)."""
    local = np.zeros((NUM_LANDMARKS, 2), np.float64)
    for au in self.check(aus):
      local += self.patterns[au]
    return local

  def displacement(self, aus, landmarks, intensity: float = 1.0, regions=None) -> np.ndarray:
    """(68, 2) float64 pixel displacement at the apex of `aus` on a face with these landmarks.

    `regions` (names of `au_keypoints.REGIONS`) keeps only those regions' landmarks moving.
    """
    lm = _check_landmarks(landmarks, "AU displacement(landmarks)")
    if not (np.isfinite(intensity) and intensity >= 0):
      raise ValueError(f"--intensity must be a number >= 0 (1 = the model's), got {intensity}")
    local = self.combine(aus) * (self.scale * float(intensity))
    if regions:
      keep = np.zeros((NUM_LANDMARKS, 1))
      keep[au_keypoints.region_landmarks(regions)] = 1.0
      local = local * keep
    return inter_ocular(lm) * to_image(local, lm)

  def track(self, landmarks, aus, curve, intensity: float = 1.0, regions=None) -> np.ndarray:
    """(T, 68, 2) float32 landmarks of the face moved by `aus` with the (T,) intensity `curve`."""
    lm = _check_landmarks(landmarks, "AU track(landmarks)")
    curve = np.asarray(curve, np.float64)
    if curve.ndim != 1 or not len(curve):
      raise ValueError(f"AU track: the intensity curve must be (T,), got shape {curve.shape}")
    disp = self.displacement(aus, lm, intensity, regions)
    return (lm[None] + curve[:, None, None] * disp[None]).astype(np.float32)

  # ---------------------------------------------------------------------------------------- files
  def to_json(self) -> dict:
    return {
      "format": FORMAT,
      "source": self.source,
      "scale": float(self.scale),
      "envelope": {"duration_ms": float(self.duration_ms), "apex_fraction": self.apex_fraction},
      "patterns": {
        str(a): np.asarray(p).round(6).tolist() for a, p in sorted(self.patterns.items())
      },
      "fit": dict(self.fit),
    }

  def save(self, path: str) -> str:
    """Writes the model as JSON (through a temporary file, so a failed write leaves no half file)."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.partial"
    with open(tmp, "w") as f:
      json.dump(self.to_json(), f, indent=1)
    os.replace(tmp, path)
    return path


def from_json(doc: Mapping, where: str = "AU model") -> AUModel:
  """An AUModel from `to_json`'s dict; ValueError saying what is wrong."""
  if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
    raise ValueError(
      f"{where}: not an AU model file (expected format {FORMAT!r}); write one with me-fomm fit-au"
    )
  try:
    patterns = {int(a): np.asarray(p, np.float64) for a, p in doc["patterns"].items()}
    env = doc.get("envelope", {})
    model = AUModel(
      patterns=patterns,
      scale=float(doc["scale"]),
      duration_ms=float(env.get("duration_ms", DEFAULT_DURATION_MS)),
      apex_fraction=float(env.get("apex_fraction", DEFAULT_APEX_FRACTION)),
      source=str(doc.get("source", where)),
      fit=dict(doc.get("fit", {})),
    )
  except (KeyError, TypeError, ValueError) as e:
    raise ValueError(f"{where}: malformed AU model ({type(e).__name__}: {e})") from None
  bad = [
    a for a, p in patterns.items() if p.shape != (NUM_LANDMARKS, 2) or not np.isfinite(p).all()
  ]
  if bad or not patterns:
    raise ValueError(f"{where}: AU pattern(s) {bad or 'none'} are not finite (68, 2) arrays")
  return model


def load(path: str | None) -> AUModel:
  """The AU model of a file written by `AUModel.save` (`me-fomm fit-au`), or the default for None."""
  if not path:
    return default_model()
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--au_model={path}: no such file; write one with me-fomm fit-au")
  try:
    with open(path) as f:
      doc = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"--au_model={path}: cannot read it as JSON ({e})") from None
  model = from_json(doc, f"--au_model={path}")
  return dataclasses.replace(model, source=f"{os.path.basename(path)}: {model.source}")


def default_model() -> AUModel:
  """The model written from the FACS descriptions (`au_patterns.FACS_PATTERNS`), every AU of the corpora."""
  return AUModel(patterns={au: pattern_array(e) for au, e in FACS_PATTERNS.items()})
