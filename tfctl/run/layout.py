"""Where everything of a run lives. One place that knows the paths, so nothing else spells them out.

runs/<name>/
  recipe.yaml        the resolved recipe (after --set)
  state.json         per stage: status, fingerprint, growth report, result
  metrics.jsonl      every record: train | eval | growth | stage_end | error
  data -> ...        the prepared dataset (a link into the shared cache)
  stages/<stage>/    spec.json, init/ (grown weights), checkpoints/, final/, worker.log
  compare/           report.md, report.json, ppl_vs_flops.png

Every path handed out below the run (its stage directories and their files, compare/, .lock) is checked
on the way out: none of its parts below the run may be a link, so tfctl's writes and deletes stay in the run.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import under_run
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
        return under_run(self.root / ".lock", self.root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def compare(self) -> Path:
        return under_run(self.root / "compare", self.root)

    def stage(self, name: str) -> Path:
        """RUN/stages/<name>; a name that is not a plain stage name (read back from a damaged or hostile
        state.json, say) is refused, so nothing outside RUN/stages/ is ever touched through it."""
        if not isinstance(name, str) or not STAGE_NAME.fullmatch(name):
            raise UserError(f"{self.root}: {name!r} is not a stage name (letters, digits, ., - and _)")
        return under_run(self.root / "stages" / name, self.root)

    def removed(self, name: str) -> Path:
        """Where `restart_from` renames a stage's directory before deleting it (never a stage name)."""
        return self.root / "stages" / f".removed-{self.stage(name).name}-{os.getpid()}"

    def set_aside(self) -> list[Path]:
        stages = self.root / "stages"
        return sorted(stages.glob(".removed-*")) if stages.is_dir() else []

    def spec(self, name: str) -> Path:
        return under_run(self.stage(name) / "spec.json", self.root)

    def init(self, name: str) -> Path:
        return under_run(self.stage(name) / "init", self.root)

    def final(self, name: str) -> Path:
        return under_run(self.stage(name) / "final", self.root)

    def checkpoints(self, name: str) -> Path:
        return under_run(self.stage(name) / "checkpoints", self.root)

    def stage_paths(self, name: str) -> list[Path]:
        """Every path tfctl writes in a stage's directory, each checked on the way out (a link: refused)."""
        return [
            self.spec(name),
            self.init(name),
            self.final(name),
            self.checkpoints(name),
            self.worker_log(name),
        ]

    def worker_log(self, name: str) -> Path:
        return under_run(self.stage(name) / "worker.log", self.root)

    def is_run(self) -> bool:
        return self.state.is_file()
