"""`tfctl data prepare` and `tfctl data info`."""

import json

from typer.testing import CliRunner

from tests.data.conftest import isolated_cache  # noqa: F401  (autouse here: nothing in the real cache)
from tfctl.cli import app


def test_prepare_then_info(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world\n" * 30)
    (tmp_path / "b.txt").write_text("Goodbye world\n" * 30)
    runner = CliRunner()
    out = tmp_path / "data"
    prepared = runner.invoke(
        app, ["data", "prepare", "-s", str(tmp_path / "*.txt"), "-t", "gpt2", "-o", str(out)]
    )
    assert prepared.exit_code == 0, prepared.output
    assert prepared.stdout.strip().splitlines()[-1] == str(out)

    shown = runner.invoke(app, ["data", "info", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert info["path"] == str(out) and info["eos_id"] == 50256 and info["padded_vocab_size"] == 50304
    assert info["splits"]["train"]["documents"] == info["splits"]["val"]["documents"] == 1
    # "Hello world\n" is 3 GPT-2 tokens, "Goodbye world\n" 4 ("Good", "bye", ...): 30 lines + EOS each
    assert sorted(s["tokens"] for s in info["splits"].values()) == [91, 121]

    table = runner.invoke(app, ["data", "info", str(out)])
    assert table.exit_code == 0 and "50,304" in table.stdout and "gpt2" in table.stdout


def test_prepare_again_with_other_settings_replaces_the_dataset(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world\n" * 30)
    (tmp_path / "b.txt").write_text("Goodbye world\n" * 30)
    runner = CliRunner()
    args = ["data", "prepare", "-s", str(tmp_path / "*.txt"), "-t", "gpt2", "-o", str(tmp_path / "data")]
    assert runner.invoke(app, [*args, "--seed", "1"]).exit_code == 0
    assert runner.invoke(app, [*args, "--seed", "2"]).exit_code == 0
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["settings"]["seed"] == 2
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no .old-/.partial- left
