"""A damaged record shard as one clear error: which file, and the command that rebuilds it.

A prepared dataset is a few `array_record` shard files. One that was truncated (a copy cut
short, a full disk) or had bytes flipped (a bad disk or transfer) fails deep inside
array_record/Riegeli with a RuntimeError about chunk hashes and block headers, or, when only a
frame's bytes changed, as an image that does not decode. `me_fomm.data.sources.ClipSource` --
the one reader of records -- turns both into `DamagedShardError`: a ValueError, so a command
prints it as one line and exits 2 (`me_fomm.commands.options.run_command`), and picklable, so
it crosses from a Grain worker process or a prefetch thread unchanged.

Records read through a ClipSource are `Record`s: dicts that also know where they came from
(`origin`), so the frame decoders (`me_fomm.data.clip`, `me_fomm.data.pipeline`) can name the
shard of a frame that does not decode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

# A reason longer than this is cut: it is the low-level library's, kept only as a hint.
_REASON_CHARS = 160


class DamagedShardError(ValueError):
  """A record shard of a prepared dataset is missing, truncated or corrupt.

  Attributes: `shard` (the file's path, '' when unknown) and `rebuild` (the command to run).
  """

  def __init__(self, message: str, shard: str = "", rebuild: str = ""):
    super().__init__(message)
    # Set as attributes (not args): pickling re-creates the error from args = (message,) and
    # then restores __dict__, so a worker's error arrives whole.
    self.shard, self.rebuild = shard, rebuild


@dataclasses.dataclass(frozen=True)
class Origin:
  """Where a record was read: its shard file, its index in the split, and how to rebuild."""

  shard: str  # '' when the reader does not say
  index: int
  dataset: str  # 'synthetic_me/small_64'
  split: str
  folder: str  # the dataset's version folder (what --overwrite replaces)
  rebuild: str  # 'me-fomm prepare --dataset=... --data_dir=... --overwrite'


class Record(dict):
  """A clip record (a plain dict of its fields) that also carries its `Origin`."""

  origin: Origin | None = None


def reason(cause: BaseException) -> str:
  """The first line of a low-level error, cut short: a hint after what the error says."""
  lines = str(cause).strip().splitlines()
  text = (lines[0] if lines else "") or type(cause).__name__
  # A decoder's own advice to rebuild would say it twice: the message ends with the command.
  text = text.split("; rebuild")[0].rstrip(".")
  return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def damaged(origin: Origin, cause: BaseException, what: str = "") -> DamagedShardError:
  """The error for a record at `origin` that could not be read or decoded (`what`: which part)."""
  where = f"clip {origin.index} of {origin.dataset} {origin.split}"
  if origin.shard and not os.path.exists(origin.shard):
    head = f"record shard {origin.shard} is missing ({where})"
  elif origin.shard:
    head = f"record shard {origin.shard} is damaged (truncated or corrupt; {where}"
    head += f": {what + ': ' if what else ''}{reason(cause)})"
  else:
    head = (
      f"a record shard of {origin.dataset} {origin.split} in {origin.folder} is damaged "
      f"(truncated or corrupt; {where}: {what + ': ' if what else ''}{reason(cause)})"
    )
  return DamagedShardError(
    f"{head}; rebuild the dataset: {origin.rebuild}", shard=origin.shard, rebuild=origin.rebuild
  )


@contextlib.contextmanager
def decoding(record, what: str = "a frame"):
  """Turns a failure to decode part of `record` (`what`) into a DamagedShardError naming its
  shard when the record knows its origin; a record from elsewhere keeps the error it raised."""
  try:
    yield
  except DamagedShardError:
    raise
  except Exception as e:  # an image that does not decode (ValueError, cv2.error), ragged frames
    origin = getattr(record, "origin", None)
    if origin is None:
      raise
    raise damaged(origin, e, what) from e
