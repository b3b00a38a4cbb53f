"""Batches drawn on a thread ahead of the step, already laid out on the mesh."""

from __future__ import annotations

import queue
import threading
from typing import Callable


class Prefetcher:
  """Draws batches on a thread, each with the iterator state *after* it was drawn.

  With `put` (the trainer passes the host batch -> global sharded batch transfer) the thread also
  starts the host->device copies, so up to `depth` batches wait on the devices already laid out
  on the mesh and the step never waits for a transfer. Without it the queue holds host batches.
  """

  def __init__(self, loader, depth: int, put: Callable | None = None):
    self._loader, self._q = loader, queue.Queue(maxsize=max(1, depth))
    self._put = put
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self):
    try:
      while not self._stop.is_set():
        batch = next(self._loader)
        state = self._loader.get_state()
        if self._put is not None:
          # device_put is asynchronous: this enqueues the copies and returns, the
          # arrays become ready while the current step runs.
          batch = self._put(batch)
        item = (batch, state)
        while not self._stop.is_set():
          try:
            self._q.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
    except BaseException as e:  # Re-raised in the training thread.
      self._q.put(e)

  def next(self):
    item = self._q.get()
    if isinstance(item, StopIteration):
      raise RuntimeError(
        "the pair loader ran out of batches; it should repeat forever "
        "(me_fomm.data.pipeline.pair_loader)"
      ) from item
    if isinstance(item, BaseException):
      raise item
    return item

  def close(self):
    self._stop.set()
    self._thread.join(timeout=5)
