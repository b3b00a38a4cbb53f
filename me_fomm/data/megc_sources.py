"""The MEGC2021/2022 micro-expression generation task's driving clips, named in one place.

The challenge gives three source (driving) clips per corpus, one per class, to be
transferred onto the provided target faces.
"""

from __future__ import annotations

GENERATION_SOURCES = {
  "samm": ("007_7_1", "022_3_3", "018_3_1"),
  "casme2": ("EP01_13", "EP01_01f", "EP19_06f"),
  "smic": ("s20_sur_01", "s3_po_05", "s11_ne_02"),
}


def clip_name(clip_id: str) -> str:
  """The corpus file name part of a clip id (CASME II ids are 'sub01/EP02_01f')."""
  return clip_id.rsplit("/", 1)[-1]


def find_generation_sources(source, corpus: str) -> dict[str, int]:
  """{clip name: index in `source`} of a corpus's MEGC generation clips.

  Raises KeyError naming the clips that are missing, and ValueError if a name matches
  more than one clip (CASME II reuses file names across subjects).
  """
  if corpus not in GENERATION_SOURCES:
    raise ValueError(
      f"no MEGC generation sources for corpus {corpus!r}; known: {sorted(GENERATION_SOURCES)}."
    )
  wanted = set(GENERATION_SOURCES[corpus])
  found: dict[str, list] = {w: [] for w in wanted}
  for i in range(len(source)):
    clip = source[i]
    if clip.get("corpus", corpus) != corpus:
      continue
    name = clip_name(clip["clip_id"])
    if name in wanted:
      found[name].append(i)
  missing = sorted(n for n, idx in found.items() if not idx)
  if missing:
    raise KeyError(
      f"MEGC generation source clips {missing} of {corpus} are not in the "
      "dataset (were they skipped at build time? see build_report.json)."
    )
  ambiguous = {n: idx for n, idx in found.items() if len(idx) > 1}
  if ambiguous:
    raise ValueError(f"MEGC source names match several clips: {ambiguous}.")
  return {n: found[n][0] for n in GENERATION_SOURCES[corpus]}
