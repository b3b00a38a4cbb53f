"""`python -m experiments.train --config=experiments/configs/seed.py:casme2 --workdir=...`.

The same program as `me-fomm train` (flags and main in me_fomm.commands.train).
"""

from absl import app

from me_fomm.commands.train import main

if __name__ == "__main__":
  app.run(main)
