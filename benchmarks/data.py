"""Data benchmark: clips/s when building records, pairs/s per CPU core for the Grain pipeline.

  python -m benchmarks.data --image_size=256 --batch_size=16
  python -m benchmarks.run --what=data ...        (benchmarks/run.py calls `run`)

Building: a fresh build into a temporary folder, timed end to end (dlib, crop/warp, PNG
encoding, TFDS writing and shuffling). For synthetic_me `build_clips` training clips are
rendered (plus one test clip); a corpus needs `manual_dir`.

Pairs: `pair_loader` with no prefetch threads and no worker processes, so every batch is
made on demand in the calling thread; pairs/s from that run is the rate of one CPU core
(decode two PNGs, crop/resize if asked, flip, colour jitter, float conversion, batching).
With `workers` > 0 it also runs Grain worker processes and reports the total rate and the
rate per worker. Each is timed for every `pairs_per_clip` (pairs drawn per clip record read), and once with
all clip records cached in memory (`cache_clips`), which leaves decoding and augmentation, and once
reading the split's decoded frames from a frame store (`frame_store`, me_fomm/data/frame_store.py; built
in a temporary folder before the clock starts), which leaves augmentation alone. Given an
experiment config (`benchmarks.run --what=data`), the pairs are timed once with the config's `data.*`
loader fields, the options training passes to `pair_loader` (`me_fomm.data.pipeline.loader_options`).
Figures are printed, never asserted: they depend on the machine. Rates per CPU-second
(process CPU time) are printed too: on a machine shared with other jobs they, not wall-clock
rates, estimate what one free core does.
"""

from __future__ import annotations

import json
import os
import tempfile
import time


def _time_build(
  dataset: str,
  image_size: int,
  build_clips: int,
  manual_dir: str | None,
  work_dir: str,
  frame_format: str = "png",
):
  import tensorflow_datasets as tfds

  from me_fomm.data import sources

  tfds.disable_progress_bar()
  synthetic = dataset.split("/")[0] == "synthetic_me"
  if not synthetic and not manual_dir:
    raise ValueError(f"benchmarking the build of {dataset} needs manual_dir (the corpus).")
  if synthetic and "/" not in dataset:
    dataset += "/demo"
  options = {"num_train": build_clips, "num_test": 1} if synthetic else None
  b = sources.builder(dataset, work_dir, image_size, frame_format=frame_format, options=options)
  # One-off costs, not timed: dlib's models, and synthetic_me's faces of the two photos.
  _ = b.detector, b.crop_detector
  b._before_workers()  # pylint: disable=protected-access
  dl = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir and not synthetic else None
  start, cpu = time.perf_counter(), time.process_time()
  b.download_and_prepare(download_config=dl)
  seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
  clips = sum(b.report.written.values())
  return b, {
    "what": "build",
    "dataset": f"{b.name}/{b.builder_config.name}",
    "image_size": image_size,
    "clips": clips,
    "frames": b.report.frames,
    "seconds": round(seconds, 3),
    "clips_per_s": round(clips / seconds, 2),
    "frames_per_s": round(b.report.frames / seconds, 1),
    "cpu_seconds": round(cpu, 3),
    "clips_per_cpu_s": round(clips / cpu, 2),
    "cores": 1,
  }


def _time_pairs(
  source,
  batch_size: int,
  batches: int,
  augment=True,
  worker_count: int = 0,
  worker_buffer_size: int = 2,
  pairs_per_clip: int = 1,
  cache_clips: int = 1,
  frame_store: str = "",
  **unused,
) -> dict:
  """Times `pair_loader` with these options (those of `pipeline.loader_options`); frames at the
  source's stored size (`image_size` is the source's, so it is not passed again)."""
  from me_fomm.data import pipeline

  del unused  # image_size, read_threads: fixed here (see the module doc)
  workers = worker_count
  it = pipeline.pair_loader(
    source,
    batch_size,
    seed=0,
    augment=augment,
    worker_count=workers,
    worker_buffer_size=worker_buffer_size,
    read_threads=0 if workers == 0 else None,
    pairs_per_clip=pairs_per_clip,
    cache_clips=cache_clips,
    frame_store=frame_store,  # built here, before the clock starts
  )
  cache = cache_clips > 1
  warm = 2 if workers == 0 else 2 * workers  # worker start-up
  if cache:  # one epoch fills the cache
    warm = max(warm, -(-len(source) * pairs_per_clip // batch_size) * max(workers, 1))
  for _ in range(warm):
    next(it)
  start, cpu = time.perf_counter(), time.process_time()
  for _ in range(batches):
    batch = next(it)
  seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
  pairs = batches * batch_size
  cores = max(workers, 1)
  return {
    "what": "pairs",
    "image_size": int(batch["source"].shape[1]),
    "batch_size": batch_size,
    "augment": bool(augment),
    "workers": workers,
    "pairs_per_clip": pairs_per_clip,
    "cached": cache,
    "frame_store": bool(frame_store),
    "pairs": pairs,
    "seconds": round(seconds, 3),
    "pairs_per_s": round(pairs / seconds, 1),
    "pairs_per_s_per_core": round(pairs / seconds / cores, 1),
    "cores": cores,
    # CPU time of this process (workers excluded): the per-core rate on a machine
    # whose cores are shared with other jobs, where wall time overstates the cost.
    "cpu_seconds": round(cpu, 3),
    "pairs_per_cpu_s": round(pairs / cpu, 1) if workers == 0 else None,
  }


def run(
  dataset="synthetic_me",
  data_dir: str | None = None,
  image_size: int = 256,
  batch_size: int = 16,
  batches: int = 30,
  build_clips: int = 12,
  manual_dir: str | None = None,
  workers: int = 0,
  augment: bool = True,
  measure_build: bool = True,
  pairs_per_clip=(1, 4),
  cache: bool = True,
  frame_format: str = "png",
  frame_store: bool = True,
  *,
  batch: int | None = None,
  steps: int | None = None,
  warmup: int | None = None,
  repeats: int | None = None,
) -> list[dict]:
  """Measures building (clips/s) and the pair pipeline (pairs/s per core); returns rows.

  The pair pipeline reads `dataset` from `data_dir` when it is built there at `image_size`;
  otherwise it reads the records built by the build measurement.

  `dataset` may also be an experiment config (as `benchmarks.run --what=data` passes it):
  its `data.name`, `data.data_dir`, `data.image_size` (else `model.image_size`) are used and the
  pairs are timed once, with the loader options training uses (`pipeline.loader_options`:
  augment, worker_count, worker_buffer_size, pairs_per_clip, cache_clips); `batch` is the batch
  size and `steps * repeats` the timed batches (`warmup` is fixed by the pipeline: see
  `_time_pairs`).
  """
  from me_fomm.data import pipeline, sources

  del warmup
  loader = None  # the config's pair_loader options, when a config is given
  if not isinstance(dataset, str):
    config = dataset
    dataset = config.data.name
    data_dir = config.data.get("data_dir") or data_dir
    image_size = int(config.data.get("image_size") or config.model.image_size)
    loader = pipeline.loader_options(config.data)
  if batch is not None:
    batch_size = int(batch)
  if steps is not None:
    batches = int(steps) * int(repeats or 1)

  rows = []
  with tempfile.TemporaryDirectory(prefix="me_fomm_bench_") as tmp:
    source = None
    if data_dir is not None:
      try:
        source = sources.load(
          dataset, data_dir, "train", image_size=image_size, frame_format=frame_format
        )
      except FileNotFoundError:
        source = None
    if measure_build or source is None:
      b, row = _time_build(dataset, image_size, build_clips, manual_dir, tmp, frame_format)
      rows.append(row)
      if source is None:
        source = sources.ClipSource(
          b.as_data_source("train"), row["dataset"], "train", folder=os.fspath(b.data_dir)
        )
    if loader is not None:
      rows.append(_time_pairs(source, batch_size, batches, **loader))
      return rows
    for k in [pairs_per_clip] if isinstance(pairs_per_clip, int) else pairs_per_clip:
      rows.append(_time_pairs(source, batch_size, batches, augment, pairs_per_clip=k))
      if workers > 0:
        rows.append(
          _time_pairs(source, batch_size, batches, augment, worker_count=workers, pairs_per_clip=k)
        )
    if cache:  # every clip record in memory: decoding and augmentation only
      rows.append(_time_pairs(source, batch_size, batches, augment, cache_clips=len(source)))
    if frame_store:  # the split's frames decoded once into a memory-mapped store (in tmp)
      store = os.path.join(tmp, "frame_store")
      rows.append(_time_pairs(source, batch_size, batches, augment, frame_store=store))
  return rows


def _print(rows: list[dict]) -> None:
  for r in rows:
    if r["what"] == "build":
      print(
        f"build  {r['dataset']:<28} {r['clips']:>4} clips {r['frames']:>6} frames "
        f"{r['seconds']:>8.2f} s  {r['clips_per_s']:>8.2f} clips/s  "
        f"{r['frames_per_s']:>8.1f} frames/s (1 core); {r['clips_per_cpu_s']:.2f} "
        "clips per CPU-second"
      )
    else:
      print(
        f"pairs  {r['image_size']}x{r['image_size']} batch {r['batch_size']:<3} "
        f"workers {r['workers']} pairs/clip {r['pairs_per_clip']}"
        f"{' cached' if r['cached'] else ' store ' if r.get('frame_store') else '       '}  "
        f"{r['pairs_per_s']:>8.1f} pairs/s  "
        f"{r['pairs_per_s_per_core']:>8.1f} pairs/s per core"
        + (f"; {r['pairs_per_cpu_s']:.1f} pairs per CPU-second" if r["pairs_per_cpu_s"] else "")
      )


def _options():
  from me_fomm.commands import options as O

  return (
    O.string("dataset", "synthetic_me", "dataset name (see me_fomm.data.sources)."),
    O.string("data_dir", None, "read a dataset built here (else the benchmark's build)."),
    O.string("manual_dir", None, "corpus folder, to time building a real corpus."),
    O.integer("image_size", 256, "resolution."),
    O.integer("batch_size", 16, "pairs per batch."),
    O.integer("batches", 30, "timed batches."),
    O.integer("build_clips", 12, "synthetic_me clips to build for the build timing."),
    O.integer("workers", 0, "also time this many Grain worker processes."),
    O.boolean("augment", True, "flip + time flip + colour jitter."),
    O.boolean("measure_build", True, "time building as well."),
    O.string("json_out", None, "also write the rows as JSON here."),
    O.strings("pairs_per_clip", ["1", "4"], "pair_loader pairs_per_clip values to time."),
    O.enum("frame_format", "png", ["png", "jpeg"], "stored frame encoding."),
    O.boolean("cache", True, "also time with every clip record cached in memory."),
    O.boolean(
      "frame_store", True, "also time reading decoded frames from a frame store (built first)."
    ),
  )


def main(f) -> None:
  rows = run(
    f.dataset,
    f.data_dir,
    f.image_size,
    f.batch_size,
    f.batches,
    f.build_clips,
    f.manual_dir,
    f.workers,
    f.augment,
    f.measure_build,
    tuple(int(k) for k in f.pairs_per_clip),
    f.cache,
    f.frame_format,
    f.frame_store,
  )
  _print(rows)
  if f.json_out:
    os.makedirs(os.path.dirname(os.path.abspath(f.json_out)), exist_ok=True)
    with open(f.json_out, "w") as fh:
      json.dump(rows, fh, indent=1)


if __name__ == "__main__":
  from benchmarks.run import script

  script(_options(), main)
