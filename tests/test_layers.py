"""The import layers, read from the source files (nothing is imported).

* The library reaches the TFDS builders (`me_fomm_datasets`, the `datasets/` folder) only through
  `me_fomm/data/sources.py`; the builders import the library's primitives, not the other way.
* The packages of `me_fomm` form layers (DESIGN.md): each imports only packages of its own or a lower
  layer, and inference (`generate`, `evaluate`) never imports training.
"""

import ast
import pathlib

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


# Lowest first; a package may import its own layer and those before it.
LAYERS = (
  ("xla_cpu",),
  ("prior",),
  ("data", "model"),
  ("checkpoint",),
  ("convert", "train", "recognize"),
  ("generate",),
  ("evaluate", "export"),
  ("commands",),
  ("cli",),
)
NEVER = {"generate": ("train",), "evaluate": ("train",), "export": ("train",)}


def _package(path: pathlib.Path) -> str:
  return path.relative_to(LIBRARY).parts[0].removesuffix(".py")


def test_packages_import_downward_only():
  level = {p: i for i, layer in enumerate(LAYERS) for p in layer}
  packages = {_package(p) for p in _sources(LIBRARY)} - {"__init__"}
  assert packages <= set(level), f"add {sorted(packages - set(level))} to LAYERS (and DESIGN.md)"
  offenders = []
  for path in _sources(LIBRARY):
    own = _package(path)
    if own == "__init__":
      continue
    for m in imported_modules(path):
      if not m.startswith("me_fomm."):
        continue
      other = m.split(".")[1]
      if other in level and (level[other] > level[own] or other in NEVER.get(own, ())):
        offenders.append(f"{path.relative_to(ROOT)} imports {m}")
  assert not offenders, offenders
