"""state.json: what has happened to each stage of a run, written atomically after every change."""

import json
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import atomic_write_json

PENDING, GROWING, TRAINING, DONE, FAILED = "pending", "growing", "training", "done", "failed"


class RunState:
    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data

    @classmethod
    def load(cls, path: Path, name: str) -> "RunState":
        if not path.is_file():
            return cls(path, {"name": name, "stages": {}})
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: not a readable run state ({error})") from None
        if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
            raise UserError(f"{path}: not a run state (expected an object with a 'stages' object)")
        return cls(path, data)

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    def stages(self) -> dict[str, dict]:
        return self.data["stages"]

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"status": PENDING})

    def update(self, name: str, **values) -> None:
        self.stage(name).update(values)
        self.save()

    def finished(self) -> list[str]:
        return [name for name, s in self.data["stages"].items() if s.get("status") == DONE]

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.data["stages"].pop(name, None)
        self.save()
