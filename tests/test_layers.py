"""The import layers, read from the source files (nothing is imported).

* The library reaches the TFDS builders (`me_fomm_datasets`, the `datasets/` folder) only through
  `me_fomm/data/sources.py`; the builders import the library's primitives, not the other way.
* `me_fomm/data/` is below generation, evaluation, training and the commands: it imports none.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "me_fomm"


def imported_modules(path: pathlib.Path) -> set[str]:
  """Every module a file imports: import statements anywhere in it (functions included) and
  `importlib.import_module` / `__import__` calls with a literal name."""
  tree = ast.parse(path.read_text(), filename=str(path))
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
      func = node.func
      name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
      if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
        names.add(node.args[0].value)
  return names


def _within(module: str, package: str) -> bool:
  return module == package or module.startswith(package + ".")


def _sources(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(folder.rglob("*.py"))


def test_the_scan_sees_every_kind_of_import(tmp_path):
  f = tmp_path / "m.py"
  f.write_text(
    "import a.b\nfrom c import d\n\ndef g():\n  from e.f import h\n"
    "  importlib.import_module('i.j')\nfrom . import k\n"
  )
  assert imported_modules(f) == {"a.b", "c", "c.d", "e.f", "e.f.h", "i.j"}


def test_only_sources_imports_the_builders():
  assert (LIBRARY / "data" / "sources.py").is_file()
  offenders = {
    str(path.relative_to(ROOT)): sorted(
      m for m in imported_modules(path) if _within(m, "me_fomm_datasets")
    )
    for path in _sources(LIBRARY)
    if path != LIBRARY / "data" / "sources.py"
  }
  assert {k: v for k, v in offenders.items() if v} == {}, (
    "import the builders through me_fomm.data.sources; move shared primitives into me_fomm.data"
  )


@pytest.mark.parametrize("upper", ["generate", "evaluate", "train", "commands", "cli"])
def test_data_imports_nothing_above_it(upper):
  offenders = {
    str(path.relative_to(ROOT)): sorted(
      m for m in imported_modules(path) if _within(m, f"me_fomm.{upper}")
    )
    for path in _sources(LIBRARY / "data")
  }
  assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("upper", ["train", "generate", "evaluate", "commands", "cli"])
def test_recognize_imports_only_data_and_model(upper):
  """`me_fomm/recognize/` sits beside the model: evaluation and the commands use it, not the reverse."""
  offenders = {
    str(path.relative_to(ROOT)): sorted(
      m for m in imported_modules(path) if _within(m, f"me_fomm.{upper}")
    )
    for path in _sources(LIBRARY / "recognize")
  }
  assert {k: v for k, v in offenders.items() if v} == {}
