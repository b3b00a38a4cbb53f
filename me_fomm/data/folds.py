"""Leave-one-subject-out (LOSO) folds, the protocol of MEGC's composite evaluation.

Every clip of a subject is in `train` at build time; a fold holds one subject's clips out,
so no identity is seen in training and testing of the same fold.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence


class Fold(NamedTuple):
  subject: str
  train: list  # clip indices
  test: list


def subject_key(clip: dict) -> str:
  """Subjects are unique per corpus; in a composite (megc) the corpus prefixes the subject."""
  subject = clip["subject"]
  return subject if "/" in subject else f"{clip.get('corpus', '')}/{subject}".lstrip("/")


def loso_folds(subjects: Sequence[str]) -> Iterator[Fold]:
  """One fold per distinct subject (sorted), from the per-clip subject list of a source."""
  subjects = [str(s) for s in subjects]
  if not subjects:
    raise ValueError("loso_folds: no clips.")
  distinct = sorted(set(subjects))
  if len(distinct) < 2:
    raise ValueError(f"leave-one-subject-out needs at least 2 subjects, got {distinct}.")
  for held in distinct:
    yield Fold(
      held,
      [i for i, s in enumerate(subjects) if s != held],
      [i for i, s in enumerate(subjects) if s == held],
    )


def source_folds(source) -> Iterator[Fold]:
  """LOSO folds of a clip source (reads each clip's subject once)."""
  return loso_folds([subject_key(source[i]) for i in range(len(source))])
