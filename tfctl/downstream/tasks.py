"""Downstream tasks through lm-evaluation-harness: one model, every stage of a run, the compare table.

Tasks come from lm-eval's registry or from `--include-path DIR` (task YAMLs; a local dataset is
`dataset_path: json` + `dataset_kwargs: {data_files: ...}`, which needs no network). A task whose data
cannot be loaded (a hub dataset without network) is one line naming the task, before any model runs.
"""

import logging
import random
from pathlib import Path

import datasets
import huggingface_hub
import lm_eval.api.model
import lm_eval.api.task
import numpy as np
import torch
import tqdm
import yaml
from lm_eval.evaluator import evaluate
from lm_eval.tasks import TaskManager

from tfctl.data.tokenizer import load_tokenizer
from tfctl.downstream.harness import TfctlLM
from tfctl.errors import UserError
from tfctl.hub_access import hub_offline
from tfctl.model_dir.config import TOKENIZER
from tfctl.model_dir.weights import load_model
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState
from tfctl.run.targets import model_dir_of

# lm-eval warns about every default it fills in, the hub client about every failed request: tfctl reports once
logging.getLogger("lm_eval").setLevel(logging.ERROR)
huggingface_hub.utils.logging.set_verbosity_error()
datasets.disable_progress_bars()


def _no_progress_bar(*args, **kwargs):
    return tqdm.tqdm(*args, **{**kwargs, "disable": True})


# lm-eval draws progress bars while it builds and tokenizes requests, which no option of `evaluate` turns
# off: they would break into tfctl's console (the tasks take seconds)
lm_eval.api.task.tqdm = lm_eval.api.model.tqdm = _no_progress_bar

SEED = 1234  # lm-eval's default seeds (python's is 0), so numbers match `lm-eval run` on the same model


def parse_tasks(tasks: str | list[str]) -> list[str]:
    """'lambada_openai,hellaswag' or a list of such strings → task names, in order, without repeats."""
    parts = [tasks] if isinstance(tasks, str) else list(tasks)
    names = [name.strip() for part in parts for name in part.split(",") if name.strip()]
    if not names:
        raise UserError("--tasks: no task names given")
    return list(dict.fromkeys(names))


def task_manager(names: list[str], include_path: Path | None) -> TaskManager:
    """Only the include path is indexed when it holds every task (lm-eval's registry takes ~10 s to scan)."""
    if include_path is not None:
        if not Path(include_path).is_dir():
            raise UserError(f"--include-path {include_path}: no such directory")
        local = TaskManager(include_path=str(include_path), include_defaults=False)
        if all(name in local.all_tasks for name in names):
            return local
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown and include_path is not None:
        check_task_yamls(Path(include_path))  # lm-eval skips a file it cannot parse: say so, not "unknown"
    if unknown:
        raise UserError(f"--tasks: unknown task(s) {', '.join(unknown)} (see `lm-eval ls tasks`)")
    return manager


class _TaggedLoader(yaml.SafeLoader):
    """Reads a task YAML's structure only: lm-eval's tags (`!function utils.f`) become None, never run."""


_TaggedLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def check_task_yamls(include_path: Path) -> None:
    """A task YAML of the include path that is not YAML: one line naming the file and the problem."""
    for path in sorted(include_path.rglob("*.yaml")) + sorted(include_path.rglob("*.yml")):
        try:
            yaml.load(path.read_text(encoding="utf-8"), Loader=_TaggedLoader)  # noqa: S506 (tags made None)
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            mark = getattr(error, "problem_mark", None)
            problem = getattr(error, "problem", None) or str(error)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise UserError(f"--include-path: {path} is not valid YAML ({problem}{where})") from None


def load_tasks(names: list[str], manager: TaskManager) -> dict:
    """Build every task (this reads its dataset); a dataset that cannot be loaded is the user's to fix.

    Returns lm-eval's task dict ({"tasks", "groups", "group_map"}), with simple_evaluate's defaults applied
    (zero-shot unless the task says otherwise, seeded few-shot sampling)."""
    hub_offline()  # without network a hub task fails at once, not after half a minute of retries
    built = {"tasks": {}, "groups": {}, "group_map": {}}
    for name in names:
        try:
            loaded = manager.load([name])
        except Exception as error:  # datasets raises many types: offline, not found, bad files
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise UserError(
                f"task {name}: cannot load its data ({type(error).__name__}: {reason}); without network "
                "only tasks with local data run (dataset_path: json + data_files, see README)"
            ) from None
        for key in built:
            built[key].update(loaded[key])
    for task in built["tasks"].values():
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=SEED)
    return built


def flat_metrics(results: dict) -> dict:
    """lm-eval's {"acc,none": 0.5, "acc_stderr,none": ..., "alias": ...} → {"acc": 0.5, ...}."""
    out = {}
    for task, metrics in results.items():
        out[task] = {}
        for key, value in metrics.items():
            metric, comma, filter_name = key.partition(
                ","
            )  # metrics are "name,filter"; alias, sample_len not
            if not comma or "_stderr" in metric or not isinstance(value, int | float):
                continue
            out[task][metric if filter_name in ("", "none") else key] = value
    return out


def evaluate_tasks(
    path: str | Path,
    tasks: str | list[str],
    include_path: Path | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    tasks_built: dict | None = None,
) -> dict:
    """{"model": DIR, "results": {task: {metric: value}}} of a model directory or a run's latest model."""
    names = parse_tasks(tasks)
    if tasks_built is None:
        tasks_built = load_tasks(names, task_manager(names, include_path))
    model_dir = model_dir_of(path)
    if not (model_dir / TOKENIZER).is_file():
        raise UserError(f"{model_dir}: has no {TOKENIZER}; lm-eval tasks need the model's tokenizer")
    model, _ = load_model(model_dir)
    lm = TfctlLM(model, load_tokenizer(model_dir), batch_size=batch_size, name=str(model_dir))
    random.seed(0)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    output = evaluate(lm, tasks_built, limit=limit, bootstrap_iters=0, log_samples=False, verbosity="ERROR")
    return {"model": str(model_dir), "results": flat_metrics(output["results"])}


def evaluate_run_stages(
    run_dir: str | Path,
    tasks: str | list[str],
    include_path: Path | None = None,
    limit: int | None = None,
    batch_size: int = 8,
) -> dict:
    """Every finished stage's final model of a run: {"run": DIR, "stages": {stage: {"model", "results"}}}."""
    run_dir = Path(run_dir)
    if not RunDir(run_dir).is_run():
        raise UserError(f"{run_dir}: --all-stages needs a run directory (with state.json)")
    stages = RunState.load(RunDir(run_dir).state, run_dir.name).finished()
    if not stages:
        raise UserError(f"{run_dir}: no finished stage yet (run `tfctl train` first)")
    names = parse_tasks(tasks)
    built = load_tasks(names, task_manager(names, include_path))
    return {
        "run": str(run_dir),
        "stages": {
            stage: evaluate_tasks(
                RunDir(run_dir).final(stage), names, limit=limit, batch_size=batch_size, tasks_built=built
            )
            for stage in stages
        },
    }
