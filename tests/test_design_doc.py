"""DESIGN.md names only what exists: every dotted `me_fomm...` name in backticks imports."""

import importlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _resolve(name: str):
  parts = name.split(".")
  for i in range(len(parts), 0, -1):
    try:
      obj = importlib.import_module(".".join(parts[:i]))
    except ImportError:
      continue
    for attr in parts[i:]:
      obj = getattr(obj, attr)
    return obj
  raise ImportError(name)


def test_every_dotted_name_exists():
  text = (ROOT / "DESIGN.md").read_text()
  names = set(re.findall(r"`((?:me_fomm|me_fomm_datasets|me_fomm_experiments)(?:\.\w+)+)", text))
  assert len(names) > 20
  missing = []
  for name in sorted(names):
    try:
      _resolve(name)
    except (ImportError, AttributeError):
      missing.append(name)
  assert not missing, f"DESIGN.md names what does not exist: {missing}"
