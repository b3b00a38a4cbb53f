"""Generation throughput: frames/s for a batch of frames and for one frame at a time.

Times the compiled per-batch program of `me_fomm.generate.animate.Animator` (driving keypoints, relative
motion transfer, dense motion, generator) on frames already on the device, with randomly initialised
variables (speed does not depend on the weights). The one-frame figure is the same program compiled for
batch 1, called frame after frame, as an interactive user would.

    python -m benchmarks.run --what=generate --config=experiments/configs/fomm_vox.py --batch=32
    python -m benchmarks.generate --config=experiments/configs/seed.py --batch=32 --image_size=256
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np


def _setup(config, image_size: int | None):
    from me_fomm import model as model_lib
    from me_fomm.generate.animate import Animator

    cfg = config.model if "model" in config else config
    cfg = cfg.copy_and_resolve_references()
    if image_size:
        cfg.image_size = int(image_size)
    models = model_lib.build_models(cfg)
    variables = model_lib.init_variables(models, cfg, jax.random.PRNGKey(0))
    return cfg, models, variables, Animator


def run(config, batch: int = 32, steps: int = 10, warmup: int = 2, repeats: int = 3,
        image_size: int | None = None) -> list[dict]:
    """Rows {'figure': frames/s, 'unit', 'mode': 'batch'|'one_frame', step and compile times, FLOPs, memory}.

    Args:
      config: a training config (with `.model`) or a model config.
      batch: frames per compiled batch for the batched figure.
      steps, warmup, repeats: timed calls per repeat, untimed calls, repeats (median reported).
      image_size: override of the model's resolution (e.g. 256 for the demo config's architecture at 256).
    """
    from benchmarks.run import compiled_flops, peak_memory, time_steps
    from benchmarks.train import synthetic_landmarks

    cfg, models, variables, Animator = _setup(config, image_size)
    size = int(cfg.image_size)
    rng = np.random.default_rng(0)
    rows = []
    for mode, b, n_steps in (("batch", batch, steps), ("one_frame", 1, steps)):
        animator = Animator(models, variables, cfg, batch_size=b)
        v = jax.device_put(animator.variables)
        source = jnp.asarray(rng.random((1, size, size, 3), np.float32))
        driving = jnp.asarray(rng.random((b, size, size, 3), np.float32))
        prior = None
        src_prior = None
        if animator.uses_prior:
            from me_fomm.generate.animate import au_prior_values

            lm = synthetic_landmarks(b + 1, size, rng)
            values = au_prior_values(lm, size)
            src_prior, prior = jnp.asarray(values[:1]), jnp.asarray(values[1:])
        kp_s = animator._keypoints(v, source, src_prior)
        kp_0 = animator._keypoints(v, driving[:1], None if prior is None else prior[:1])
        t = time.perf_counter()
        scale = jnp.float32(1.0)
        compiled = animator._frames.lower(v, source, kp_s, kp_0, driving, prior, scale).compile()
        compile_s = time.perf_counter() - t
        flops = compiled_flops(compiled)

        def call():
            return compiled(v, source, kp_s, kp_0, driving, prior, scale)[0]

        timing = time_steps(call, n_steps, repeats, warmup)
        step_s = timing["step_time_s"]
        row = {"figure": b / step_s, "unit": "frames/s", "mode": mode, "frames_per_call": b,
               "step_time_s": step_s, "compile_time_s": compile_s, "image_size": size,
               "variant": cfg.variant, "dtype": cfg.dtype, **peak_memory(compiled)}
        if flops is not None:
            row.update(model_flops_per_step=flops, achieved_tflops_per_s=flops / step_s / 1e12)
        rows.append(row)
    return rows


def main(argv) -> None:
    import json

    from absl import flags

    from benchmarks.run import device_info

    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments {argv[1:]}")
    config = FLAGS.config
    rows = run(config, batch=FLAGS.batch, steps=FLAGS.steps, warmup=FLAGS.warmup, repeats=FLAGS.repeats,
               image_size=FLAGS.image_size)
    for row in rows:
        print(json.dumps({"what": "generate", "config": config.get("name", "?"), "batch": FLAGS.batch,
                          **device_info(), **row}), flush=True)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", "experiments/configs/demo.py",
                                    "Training config file (experiments/configs/*.py[:arg]).", lock_config=False)
    flags.DEFINE_integer("batch", 32, "Frames per compiled batch.")
    flags.DEFINE_integer("image_size", None, "Override the model's resolution (e.g. 256).")
    flags.DEFINE_integer("steps", 10, "Timed calls per repeat.")
    flags.DEFINE_integer("repeats", 3, "Timed repeats; the median is reported.")
    flags.DEFINE_integer("warmup", 2, "Untimed calls after compilation.")
    sys.exit(app.run(main))
