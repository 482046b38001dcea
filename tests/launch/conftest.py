"""The launch tests start real stages: the worker tests' prepared tiny dataset and stage spec."""

from tests.worker.conftest import data_dir, make_spec  # noqa: F401
