"""One training run per workdir: `workdir/train.lock` names the process that holds it.

The lock file is created with O_CREAT | O_EXCL (atomic on local disks and NFS), so of two runs started
on one workdir (a double launch, a second node given the same command) the second finds it and refuses
at once, saying which process holds it. It holds JSON {host, pid, started}; a lock whose process is gone
(same host, pid not running: a kill -9 or a crash) is taken over with a warning. A lock of another host
cannot be checked from here, so it is refused with the line to remove it by hand. In a multi-process run
process 0 holds the lock for all of them.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket

LOCK_NAME = "train.lock"


class WorkdirLockedError(RuntimeError):
  """Another live training run holds the workdir."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by another user
    return True
  return True


def _holder(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}  # being written, or garbage: treated as held by an unknown process


def _describe(holder: dict) -> str:
  if not holder:
    return "an unknown process (the lock file is empty or unreadable)"
  return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"


def acquire(workdir: str) -> str:
  """Creates the lock (or takes over a dead process's); returns its path. WorkdirLockedError else."""
  path = os.path.join(workdir, LOCK_NAME)
  me = {
    "host": socket.gethostname(),
    "pid": os.getpid(),
    "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }
  for _ in range(3):  # a takeover races at most with another takeover
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _holder(path)
      if holder is None:
        continue  # released meanwhile
      stale = holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1)))
      if not stale:
        raise WorkdirLockedError(
          f"{workdir} is in use by another training run ({_describe(holder)}); wait for it to "
          f"finish or use another --workdir. If that process is gone (another host cannot be "
          f"checked from here), remove {path}"
        ) from None
      logging.warning(
        "taking over the lock of %s: %s is not running (it was killed or crashed)",
        workdir,
        _describe(holder),
      )
      if _holder(path) == holder:  # not taken over by another run meanwhile
        with contextlib.suppress(FileNotFoundError):
          os.remove(path)
      continue
    with os.fdopen(fd, "w") as f:
      json.dump(me, f)
    return path
  raise WorkdirLockedError(f"could not take the lock {path}: other runs keep taking it")


def release(path: str) -> None:
  """Removes the lock if it is still this process's."""
  holder = _holder(path)
  if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
    os.remove(path)

