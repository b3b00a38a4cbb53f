"""Fixtures for the data pipeline tests (shared with datasets/ through common/testing.py)."""

from me_fomm_datasets.common.testing import *  # noqa: F401,F403  pylint: disable=wildcard-import
