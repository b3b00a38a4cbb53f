"""The trainer's prefetcher puts batches on the mesh ahead of the step."""

import jax
import numpy as np

from me_fomm.train import mesh as mesh_lib
from me_fomm.train.prefetch import Prefetcher


class _Loader:
  """Counts batches; its state is the number drawn so far (like pair_loader's get_state)."""

  def __init__(self, batch=4):
    self.n, self.batch = 0, batch

  def __next__(self):
    self.n += 1
    return {
      "source": np.full((self.batch, 8, 8, 3), self.n, np.float32),
      "source_landmarks": np.full((self.batch, 68, 2), -self.n, np.float32),
    }

  def get_state(self):
    return {"n": self.n}


def test_prefetched_batches_are_sharded_on_the_mesh_in_order_with_their_states():
  mesh = mesh_lib.make_mesh()
  sharding = mesh_lib.batch_sharded(mesh)
  prefetch = Prefetcher(_Loader(), depth=2, put=lambda b: mesh_lib.global_batch_from_local(b, mesh))
  try:
    for i in range(1, 4):
      batch, state = prefetch.next()
      assert state == {"n": i}  # the state after this batch, for the checkpoint of its step
      for key, value in (("source", i), ("source_landmarks", -i)):
        assert isinstance(batch[key], jax.Array)
        assert batch[key].sharding.is_equivalent_to(sharding, batch[key].ndim)
        np.testing.assert_array_equal(np.asarray(batch[key]), value)
  finally:
    prefetch.close()


def test_without_put_the_queue_holds_host_batches():
  prefetch = Prefetcher(_Loader(), depth=1)
  try:
    batch, state = prefetch.next()
    assert isinstance(batch["source"], np.ndarray) and state == {"n": 1}
  finally:
    prefetch.close()
