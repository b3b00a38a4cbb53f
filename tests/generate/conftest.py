"""The built synthetic_me/small corpus (shared with datasets/ and tests/data through common/testing.py)."""

from me_fomm_datasets.common.testing import synthetic_small  # noqa: F401
