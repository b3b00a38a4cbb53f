"""Reference fixtures of the original PyTorch models, loaded once per test session."""

from model_reference import NAMES, get_reference
import pytest


@pytest.fixture(scope="session", params=NAMES)
def ref(request):
  return get_reference(request.param)


@pytest.fixture(scope="session")
def fomm_ref():
  return get_reference("fomm_small_s0")
