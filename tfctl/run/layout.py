"""Where everything of a run lives. One place that knows the paths, so nothing else spells them out.

runs/<name>/
  recipe.yaml        the resolved recipe (after --set)
  state.json         per stage: status, fingerprint, growth report, result
  metrics.jsonl      every record: train | eval | growth | stage_end | error
  data -> ...        the prepared dataset (a link into the shared cache)
  stages/<stage>/    spec.json, init/ (grown weights), checkpoints/, final/, worker.log
  compare/           report.md, report.json, ppl_vs_flops.png
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tfctl.errors import UserError
from tfctl.recipe.schema import STAGE_NAME_PATTERN

STAGE_NAME = re.compile(STAGE_NAME_PATTERN)


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def compare(self) -> Path:
        return self.root / "compare"

    def stage(self, name: str) -> Path:
        """RUN/stages/<name>; a name that is not a plain stage name (read back from a damaged or hostile
        state.json, say) is refused, so nothing outside RUN/stages/ is ever touched through it."""
        if not isinstance(name, str) or not STAGE_NAME.fullmatch(name):
            raise UserError(f"{self.root}: {name!r} is not a stage name (letters, digits, ., - and _)")
        return self.root / "stages" / name

    def removed(self, name: str) -> Path:
        """Where `restart_from` renames a stage's directory before deleting it (never a stage name)."""
        return self.root / "stages" / f".removed-{self.stage(name).name}-{os.getpid()}"

    def set_aside(self) -> list[Path]:
        stages = self.root / "stages"
        return sorted(stages.glob(".removed-*")) if stages.is_dir() else []

    def spec(self, name: str) -> Path:
        return self.stage(name) / "spec.json"

    def init(self, name: str) -> Path:
        return self.stage(name) / "init"

    def final(self, name: str) -> Path:
        return self.stage(name) / "final"

    def worker_log(self, name: str) -> Path:
        return self.stage(name) / "worker.log"

    def is_run(self) -> bool:
        return self.state.is_file()
