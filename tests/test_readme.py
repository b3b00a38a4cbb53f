"""CI must prove the README's install steps: .ci/run runs exactly the README's test command."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bash_blocks(text):
  return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
  blocks = _bash_blocks((ROOT / "README.md").read_text())
  assert len(blocks) >= 2, "the README must open with two commands: the main job, then the tests"
  test_command = blocks[1]
  assert "pytest" in test_command
  ci_lines = [l.strip() for l in (ROOT / ".ci/run").read_text().splitlines()]
  assert test_command in ci_lines, ".ci/run must run the README's test command word for word"


def test_main_job_is_the_demo():
  main_command = _bash_blocks((ROOT / "README.md").read_text())[0]
  assert "pip install" in main_command and "me-fomm demo" in main_command


def test_functional_api_example_runs(capsys):
  """The README's Python example is executed as written, so it cannot drift from the API."""
  text = (ROOT / "README.md").read_text()
  example = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
  exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
  assert "(1, 64, 64, 3)" in capsys.readouterr().out
