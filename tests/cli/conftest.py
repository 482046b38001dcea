"""The command tests use the fixtures of the packages they drive: growth's tiny trained model directories (the
session's growth run, `growth_run`, is in tests/conftest.py; data's isolated cache is imported by test_data.py)."""

from tests.growth.conftest import model_dir, trained  # noqa: F401
