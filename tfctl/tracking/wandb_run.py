"""One W&B run per stage: named "<run dir>/<stage>", grouped by run dir, job_type `stage` or `baseline`, with
`tokens` and `flops` as step axes.

The mode is WANDB_MODE when set, else spec.wandb.mode; "online" without a configured API key falls back to
offline (no login prompt, ever). The run id is created here and kept in the stage checkpoint, so a resumed
stage continues the same W&B run. W&B is never allowed to stop training: any failure is a warning and the
local metrics.jsonl stays the record.
"""

import logging
import os
import shutil
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def resolve_mode(configured: str) -> str:
    mode = (os.environ.get("WANDB_MODE") or configured or "offline").lower()
    if mode in ("dryrun", "offline"):
        return "offline"
    if mode == "disabled":
        return "disabled"
    if not _has_api_key():  # said once per command by the CLI (tfctl.tracking.live.RunDisplay.wandb_notice)
        return "offline"
    return "online"


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


class WandbRun:
    def __init__(self, settings, run_id: str, config: dict, default_dir: Path):
        self.run_id = run_id
        self.mode = resolve_mode(settings.mode)
        self._run = None
        if self.mode == "disabled":
            return
        try:
            self._start(settings, config, default_dir)
        except Exception as error:  # noqa: BLE001 — W&B must never stop training
            log.warning("W&B disabled for this stage: %s", error)
            self._run = None

    def _start(self, settings, config: dict, default_dir: Path) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        directory = Path(settings.dir or default_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=settings.project,
            entity=settings.entity,
            group=settings.group,
            name=settings.name,
            job_type=getattr(settings, "job_type", "stage"),
            tags=list(settings.tags),
            dir=str(directory),
            config=config,
            id=self.run_id,
            resume="allow",
            mode=self.mode,
            settings=wandb.Settings(console="off", quiet=True),
        )
        for axis in ("tokens", "flops"):
            self._run.define_metric(axis)
        for prefix in ("train", "eval"):
            self._run.define_metric(f"{prefix}/*", step_metric="tokens")

    @property
    def active(self) -> bool:
        return self._run is not None

    def log(self, record: dict) -> None:
        if self._run is None or record.get("kind") not in ("train", "eval", "stage_end"):
            return
        prefix = {"stage_end": "eval"}.get(record["kind"], record["kind"])
        values = {
            f"{prefix}/{k}": v
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("tokens", "flops")
        }
        values.update(tokens=record["tokens"], flops=record["flops"])
        self._guard(lambda: self._run.log(values))
        if record["kind"] == "stage_end":
            self._guard(lambda: self._run.summary.update({k: v for k, v in record.items() if k != "kind"}))

    def finish(self, exit_code: int = 0) -> None:
        if self._run is not None:
            self._guard(lambda: self._run.finish(exit_code=exit_code))
            self._run = None

    def _guard(self, call) -> None:
        try:
            call()
        except Exception as error:  # noqa: BLE001
            log.warning("W&B call failed, continuing without W&B: %s", error)
            self._run = None


def log_side_run(
    base: str,
    job_type: str,
    mode: str,
    fill,
    failure: str,
    project: str = "tfctl",
    entity: str | None = None,
    group: str | None = None,
    directory: str | Path | None = None,
    tags: list[str] | None = None,
    config: dict | None = None,
    run_id: str | None = None,
) -> str:
    """One short W&B run beside the stage runs, named "<base>/<job_type>" in the group (default: `base`):
    the end-of-train summary, a comparison, the downstream table. `fill(wandb, run)` logs into it.

    With `run_id` (tfctl.tracking.wandb_ids) a second call updates the same W&B run instead of adding one;
    offline, the previous offline copy of that run is replaced (it held the same tables, now stale).

    W&B never stops the command: a failure is a warning ("`failure`: why") and returns "failed: <why>";
    otherwise the mode it logged in ("online", "offline", "disabled")."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return mode
    try:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        directory = Path(directory or ".")
        directory.mkdir(parents=True, exist_ok=True)
        if run_id and mode == "offline":
            for stale in (directory / "wandb").glob(f"offline-run-*-{run_id}"):
                shutil.rmtree(stale, ignore_errors=True)
        run = wandb.init(
            id=run_id,
            resume="allow" if run_id else None,
            project=project,
            entity=entity,
            group=group or base,
            name=f"{base}/{job_type}",
            job_type=job_type,
            tags=list(tags or []),
            dir=str(directory),
            mode=mode,
            config=config or {},
            settings=wandb.Settings(console="off", quiet=True),
        )
        try:
            fill(wandb, run)
        finally:
            run.finish()
        return mode
    except Exception as error:  # noqa: BLE001 — W&B must never stop a command whose files are complete
        log.warning("%s: %s", failure, error)
        return f"failed: {error}"


def log_tables(
    base: str,
    job_type: str,
    mode: str,
    tables: dict[str, tuple[list[str], list[list]]],
    summary: dict,
    failure: str,
    images: dict[str, str | Path | None] | None = None,
    **run_options,
) -> str:
    """A side run (`log_side_run`) holding tables ({key: (columns, rows)}), images ({key: PNG path}; a
    missing file is left out) and summary values: what `compare` and `compare --tasks` log. The caller
    builds the numbers; this only knows W&B."""

    def fill(wandb, run) -> None:
        values = {key: wandb.Table(columns=columns, data=rows) for key, (columns, rows) in tables.items()}
        for key, path in (images or {}).items():
            if path and Path(path).is_file():
                values[key] = wandb.Image(str(path))
        run.log(values)
        run.summary.update(summary)

    return log_side_run(base, job_type, mode, fill, failure, **run_options)
