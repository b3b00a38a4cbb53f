"""bfloat16 generation stays within a small L1 of float32 (benchmarks/bf16.py's generation check).

`tests/model` compares single bf16/f32 module calls (max error); this pins the whole generation path
(keypoints of target and driving frames, relative motion transfer, generator) by its mean L1, the
figure `python -m benchmarks.run --what=bf16` reports.
"""

import jax
from tiny_setup import tiny_config  # tests/train is on sys.path (conftest.py)

from benchmarks import bf16
from me_fomm import model as model_lib


def test_bf16_generation_mean_l1_is_small():
  config = tiny_config("seed")
  models = model_lib.build_models(config.model)
  variables = jax.device_get(model_lib.init_variables(models, config.model, 0))
  b = bf16.synthetic_pairs(1, 4, config.model.image_size)[0]
  gen = bf16.generation_l1(
    config.model,
    variables,
    b["source"][0],
    b["driving"],
    target_landmarks=b["source_landmarks"][0],
    driving_landmarks=b["driving_landmarks"],
  )
  # A fresh tiny model measures ~2e-5; 1e-3 (~0.26 grey levels of 255) leaves room across backends.
  assert gen["l1_mean"] < 1e-3, gen
