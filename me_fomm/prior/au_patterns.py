"""The default action-unit patterns: how each FACS action unit moves dlib's 68 landmarks.

Written from the FACS descriptions of each unit's visible appearance changes (Ekman & Friesen 1978; Ekman,
Friesen & Hager 2002, *Facial Action Coding System: The Manual*), one entry per AU of
`me_fomm.data.vocab.AU_VOCAB`: {AU: [(landmark indices, (dx, dy)), ...]} in pattern units, in the face frame
of `me_fomm.prior.au_motion` (dx along the eye line toward the image's right, dy perpendicular to it,
down). One pattern unit is `au_motion.DEFAULT_SCALE` inter-ocular distances at intensity 1. A landmark
appears at most once per AU.

dlib indices (iBUG 300-W, 0-based; "right"/"left" are the subject's): jaw contour 0-16 (chin 8), right brow
17-21 (21 inner), left brow 22-26 (22 inner), nose bridge 27-30, nostrils 31-35 (wings 31, 35), right eye
36-41 (outer corner 36, upper lid 37-38, inner corner 39, lower lid 40-41), left eye 42-47 (inner 42, upper
43-44, outer 45, lower 46-47), outer lips 48-59 (corners 48, 54; upper 49-53, lower 55-59), inner lips
60-67 (corners 60, 64; upper 61-63, lower 65-67).

The first eleven entries are the ones `synthetic_me` has rendered its clips with since it was written; its
renderer reads them from here. Landmarks 27-30 (the nose bridge), 39 and 42 (inner eye corners) and 0, 16
(the top of the jaw contour) stay still in every pattern: `au_fit` aligns frames on them.

Eye movements (AU61-64) barely move the 68 landmarks (there is no pupil landmark); their patterns are the
eyelid shifts that follow gaze, small on purpose.
"""

from __future__ import annotations

# fmt: off
FACS_PATTERNS = {
  # --- the patterns synthetic_me renders (unchanged: its clips stay byte-identical) ---
  1: [((20, 21, 22, 23), (0.0, -1.0)), ((19, 24), (0.0, -0.6))],  # inner brow raiser
  2: [((17, 26), (0.0, -0.8)), ((18, 25), (0.0, -1.0)), ((19, 24), (0.0, -0.5))],  # outer brow raiser
  4: [  # brow lowerer: brows down and drawn together
    ((19, 20, 21), (0.5, 0.8)), ((22, 23, 24), (-0.5, 0.8)), ((18,), (0.3, 0.6)),
    ((25,), (-0.3, 0.6)), ((17, 26), (0.0, 0.4)),
  ],
  5: [((37, 38, 43, 44), (0.0, -1.0))],  # upper lid raiser
  6: [  # cheek raiser: lower lids pushed up, crow's feet, cheeks lifted
    ((40, 41, 46, 47), (0.0, -0.7)), ((36,), (0.2, -0.3)), ((45,), (-0.2, -0.3)),
    ((1, 2, 14, 15), (0.0, -0.5)),
  ],
  7: [((40, 41, 46, 47), (0.0, -1.0)), ((37, 38, 43, 44), (0.0, 0.4))],  # lid tightener
  12: [  # lip corner puller: corners up and out along the zygomatic line
    ((48,), (-0.8, -0.8)), ((54,), (0.8, -0.8)), ((49, 59, 60), (-0.4, -0.4)),
    ((53, 55, 64), (0.4, -0.4)),
  ],
  14: [((48,), (-0.7, 0.0)), ((54,), (0.7, 0.0)), ((60,), (-0.4, 0.0)), ((64,), (0.4, 0.0))],  # dimpler
  15: [((48, 54), (0.0, 1.0)), ((55, 59, 60, 64), (0.0, 0.5))],  # lip corner depressor
  17: [  # chin raiser: chin boss and lower lip pushed up
    ((7, 8, 9), (0.0, -1.0)), ((56, 57, 58), (0.0, -0.8)), ((65, 66, 67), (0.0, -0.5)),
    ((6, 10), (0.0, -0.5)),
  ],
  26: [  # jaw drop: mandible lowered, lips parted by it
    ((8,), (0.0, 1.0)), ((7, 9), (0.0, 0.9)), ((6, 10), (0.0, 0.7)), ((5, 11), (0.0, 0.4)),
    ((55, 56, 57, 58, 59), (0.0, 0.9)), ((65, 66, 67), (0.0, 0.8)),
  ],
  # --- the rest of AU_VOCAB ---
  9: [  # nose wrinkler: nostril wings and upper lip pulled up, inner brows pulled down
    ((31,), (0.2, -0.9)), ((35,), (-0.2, -0.9)), ((32, 33, 34), (0.0, -0.6)),
    ((21, 22), (0.0, 0.5)), ((50, 51, 52), (0.0, -0.4)), ((61, 62, 63), (0.0, -0.3)),
  ],
  10: [  # upper lip raiser: upper lip up, its centre most; nostril wings widen and lift
    ((50, 51, 52), (0.0, -1.0)), ((49, 53), (0.0, -0.7)), ((61, 62, 63), (0.0, -0.9)),
    ((31,), (-0.2, -0.3)), ((35,), (0.2, -0.3)),
  ],
  11: [  # nasolabial deepener: the upper lip's sides pulled up and out
    ((49,), (-0.3, -0.6)), ((53,), (0.3, -0.6)), ((48,), (-0.2, -0.3)), ((54,), (0.2, -0.3)),
    ((50, 52), (0.0, -0.4)),
  ],
  13: [  # sharp lip puller: corners pulled up steeply, little outward
    ((48,), (-0.3, -1.0)), ((54,), (0.3, -1.0)), ((60,), (-0.2, -0.6)), ((64,), (0.2, -0.6)),
    ((49, 59), (-0.1, -0.5)), ((53, 55), (0.1, -0.5)),
  ],
  16: [  # lower lip depressor: lower lip pulled down and a little sideways
    ((56, 57, 58), (0.0, 1.0)), ((55,), (0.2, 0.7)), ((59,), (-0.2, 0.7)),
    ((65, 66, 67), (0.0, 0.8)),
  ],
  18: [  # lip pucker: lips pushed forward, corners drawn toward the middle
    ((48,), (0.8, 0.0)), ((54,), (-0.8, 0.0)), ((49, 59), (0.4, 0.0)), ((53, 55), (-0.4, 0.0)),
    ((60,), (0.6, 0.0)), ((64,), (-0.6, 0.0)),
  ],
  20: [  # lip stretcher: lips stretched sideways, corners slightly down
    ((48,), (-1.0, 0.2)), ((54,), (1.0, 0.2)), ((49, 59), (-0.5, 0.1)), ((53, 55), (0.5, 0.1)),
    ((60,), (-0.7, 0.1)), ((64,), (0.7, 0.1)),
  ],
  21: [  # neck tightener: skin of the lower face pulled down toward the neck
    ((48,), (-0.2, 0.4)), ((54,), (0.2, 0.4)), ((5, 6, 7, 8, 9, 10, 11), (0.0, 0.3)),
    ((55, 56, 57, 58, 59), (0.0, 0.2)),
  ],
  22: [  # lip funneler: lips funnel outward, the opening rounds
    ((48,), (0.6, 0.0)), ((54,), (-0.6, 0.0)), ((50, 51, 52), (0.0, -0.4)),
    ((61, 62, 63), (0.0, -0.6)), ((56, 57, 58), (0.0, 0.4)), ((65, 66, 67), (0.0, 0.6)),
  ],
  23: [  # lip tightener: red of the lips narrowed, lips tightened
    ((50, 51, 52), (0.0, 0.4)), ((56, 57, 58), (0.0, -0.4)), ((48,), (0.3, 0.0)),
    ((54,), (-0.3, 0.0)), ((61, 62, 63), (0.0, 0.3)), ((65, 66, 67), (0.0, -0.3)),
  ],
  24: [  # lip presser: lips pressed together, bulging the skin above and below
    ((50, 51, 52), (0.0, 0.6)), ((61, 62, 63), (0.0, 0.5)), ((56, 57, 58), (0.0, -0.6)),
    ((65, 66, 67), (0.0, -0.5)), ((8,), (0.0, -0.2)),
  ],
  25: [  # lips part (without the jaw): lower lip away from the upper
    ((65, 66, 67), (0.0, 1.0)), ((56, 57, 58), (0.0, 0.7)), ((61, 62, 63), (0.0, -0.3)),
    ((51,), (0.0, -0.2)),
  ],
  27: [  # mouth stretch: jaw pulled far down, lips stretched open
    ((8,), (0.0, 1.0)), ((7, 9), (0.0, 0.95)), ((6, 10), (0.0, 0.8)), ((5, 11), (0.0, 0.5)),
    ((4, 12), (0.0, 0.2)), ((55, 56, 57, 58, 59), (0.0, 1.0)), ((65, 66, 67), (0.0, 1.0)),
    ((61, 62, 63), (0.0, -0.2)), ((48,), (0.15, 0.4)), ((54,), (-0.15, 0.4)),
  ],
  28: [  # lip suck: lips pulled into the mouth, the red parts disappear
    ((50, 51, 52), (0.0, 0.7)), ((56, 57, 58), (0.0, -0.7)), ((48,), (0.3, 0.0)),
    ((54,), (-0.3, 0.0)), ((61, 62, 63), (0.0, 0.3)), ((65, 66, 67), (0.0, -0.3)),
  ],
  31: [  # jaw clencher: the masseters bulge the jaw contour outward
    ((3, 4), (-0.5, 0.0)), ((12, 13), (0.5, 0.0)), ((2,), (-0.3, 0.0)), ((14,), (0.3, 0.0)),
    ((8,), (0.0, -0.2)),
  ],
  38: [((31,), (-0.8, 0.0)), ((35,), (0.8, 0.0)), ((32,), (-0.4, 0.0)), ((34,), (0.4, 0.0))],  # nostril dilator
  39: [((31,), (0.8, 0.0)), ((35,), (-0.8, 0.0)), ((32,), (0.4, 0.0)), ((34,), (-0.4, 0.0))],  # nostril compressor
  43: [((37, 38, 43, 44), (0.0, 1.0)), ((40, 41, 46, 47), (0.0, -0.2))],  # eyes closed
  45: [((37, 38, 43, 44), (0.0, 1.0)), ((40, 41, 46, 47), (0.0, -0.25))],  # blink (its apex)
  61: [((37, 38, 43, 44), (0.3, 0.0)), ((40, 41, 46, 47), (0.2, 0.0))],  # eyes turn left (image right)
  62: [((37, 38, 43, 44), (-0.3, 0.0)), ((40, 41, 46, 47), (-0.2, 0.0))],  # eyes turn right
  63: [((37, 38, 43, 44), (0.0, -0.5)), ((40, 41, 46, 47), (0.0, -0.2))],  # eyes up: lids follow
  64: [((37, 38, 43, 44), (0.0, 0.5)), ((40, 41, 46, 47), (0.0, 0.2))],  # eyes down: lids follow
}
# fmt: on

# Class -> candidate AU combinations (the EMFACS-style prototypes synthetic_me draws one of per clip, and
# `me-fomm megc --au_templates` generates) with the emotion word a clip of that combination is stored with.
CLASS_AUS = {
  "positive": [((6, 12), "happiness")],
  "negative": [((4, 7, 14), "contempt"), ((4, 7, 15, 17), "sadness")],
  "surprise": [((1, 2, 5, 26), "surprise")],
}
