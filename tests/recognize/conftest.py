"""Fixtures for the recognition tests: the fake corpora and small builds (datasets/common/testing.py)."""

from me_fomm_datasets.common.testing import *  # noqa: F401,F403  pylint: disable=wildcard-import
