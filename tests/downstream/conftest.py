"""The downstream tests use the interop tests' tiny model directories and local lm-eval tasks."""

from tests.interop.conftest import corpus, local_tasks, make_model_dir, make_run, tokenizer_path  # noqa: F401
