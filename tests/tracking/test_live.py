"""The orchestrator's live display: follows metrics.jsonl; a bar with ETA on a terminal, compact lines in a pipe."""

import io
import json
import subprocess
import sys
import textwrap

from rich.console import Console

from tests.conftest import REPO
from tfctl.tracking.live import RunDisplay, clock
from tfctl.tracking.metrics_file import MetricsFollower


def train(step, stage="s1", loss=5.0):
    return {
        "kind": "train",
        "stage": stage,
        "step": step,
        "loss": loss,
        "stage_tokens": step * 256,
        "tokens_per_second": 12_345.0,
        "mfu": 0.031,
    }


def display_to_string(interactive=False):
    out = io.StringIO()
    return RunDisplay(interactive=interactive, console=Console(file=out, width=80)), out


def test_follower_returns_only_new_whole_records_and_rereads_a_replaced_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(train(1, stage="s0")) + "\n")
    follower = MetricsFollower(path)
    assert follower.poll() == []  # what was there before is not news
    with open(path, "a") as f:
        f.write(json.dumps(train(1)) + "\n" + '{"kind": "tra')
    assert [r["step"] for r in follower.poll()] == [1]
    with open(path, "a") as f:
        f.write('in", "stage": "s1", "step": 2}\n')
    assert [r["step"] for r in follower.poll()] == [2]
    replaced = tmp_path / "new"
    replaced.write_text(json.dumps(train(1)) + "\n")
    replaced.replace(path)  # a resumed stage rewrites the file
    assert [r["step"] for r in follower.poll()] == [1]


def test_off_a_terminal_a_line_every_tenth_of_the_stage_evals_and_a_table(tmp_path):
    display, out = display_to_string()
    stage = display.stage("s1", 40, tmp_path / "metrics.jsonl")
    stage.started = 0.0
    for step in range(1, 41):
        stage.handle(train(step), now=10.0 + step)
    stage.handle({"kind": "eval", "stage": "s1", "step": 40, "val_loss": 4.5, "val_ppl": 90.017})
    display.stage_done(
        "s1",
        {
            "params": 196_736,
            "stage_tokens": 401_408,
            "tokens": 401_408,
            "stage_flops": 4.86e11,
            "flops": 4.86e11,
            "val_loss": 4.5,
            "val_ppl": 90.017,
            "wall_seconds": 75.0,
            "mfu": 0.0312,
        },
    )
    lines = out.getvalue().splitlines()
    steps = [line for line in lines if line.startswith("[s1] step")]
    assert [line.split()[2] for line in steps] == [f"{s}/40" for s in range(4, 41, 4)]
    assert steps[0] == (
        "[s1] step 4/40 · loss 5.0000 · 1.0K tokens · 12.3k tok/s · MFU 3.1% · 0:14 elapsed · ETA 0:36"
    )
    assert "[s1] eval at step 40: val loss 4.5000, ppl 90.02" in lines
    table = "\n".join(lines[[line.strip() for line in lines].index("[s1] done") :])
    for cell in ("196.7K", "401.4K", "4.86e+11", "4.5000", "90.02", "1:15", "3.1%"):
        assert cell in table
    assert all(len(line) <= 80 for line in lines if not line.startswith("[s1] step"))


def test_eta_follows_the_pace_since_the_first_record_seen(tmp_path):
    display, _ = display_to_string()
    stage = display.stage("s1", 100, tmp_path / "m.jsonl")
    stage.handle(train(50), now=0.0)  # a resumed stage: the first record seen is at step 50
    assert stage.eta(60, now=10.0) == 40.0  # 10 steps in 10 s, 40 to go
    assert clock(stage.eta(50, now=0.0)) == "-:--" and clock(3723) == "1:02:03"


def test_records_of_other_stages_are_ignored_while_following(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.touch()
    display, out = display_to_string()
    with display.stage("s2", 10, path):
        with open(path, "a") as f:
            for record in (train(10, stage="s1"), train(10, stage="s2")):
                f.write(json.dumps(record) + "\n")
    (line,) = out.getvalue().splitlines()  # s1's record is not this stage's
    assert line.startswith("[s2] step 10/10 · loss 5.0000 · 2.6K tokens · 12.3k tok/s · MFU 3.1% · ")


FOLLOW = textwrap.dedent(
    """
    import json, sys, time
    from tfctl.tracking.live import RunDisplay

    path = sys.argv[1]
    open(path, "w").close()
    display = RunDisplay()
    with display.stage("s1", 30, path):
        for step in range(1, 31):
            with open(path, "a") as f:
                f.write(json.dumps({"kind": "train", "stage": "s1", "step": step, "loss": 5.0,
                    "stage_tokens": step * 256, "tokens_per_second": 1000.0, "mfu": 0.01}) + "\\n")
            time.sleep(0.03)
        time.sleep(0.3)
    print("finished")
    """
)


def test_a_terminal_gets_a_live_bar_with_eta_a_pipe_gets_compact_lines(tmp_path):
    script = tmp_path / "follow.py"
    script.write_text(FOLLOW)
    command = f"{sys.executable} {script} {tmp_path / 'metrics.jsonl'}"
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TERM": "xterm", "COLUMNS": "80"}
    terminal = subprocess.run(
        ["script", "-qfec", command, "/dev/null"], capture_output=True, text=True, env=env, timeout=120
    )
    assert terminal.returncode == 0, terminal.stdout[-2000:]
    assert "ETA" in terminal.stdout and "━" in terminal.stdout  # the bar, redrawn in place
    assert "[s1] step" not in terminal.stdout  # no compact lines on a terminal
    piped = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "metrics.jsonl")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert [line.split()[2] for line in lines if line.startswith("[s1] step")] == [
        f"{s}/30" for s in range(3, 31, 3)
    ]
    assert "\x1b[" not in piped.stdout and lines[-1] == "finished"


def test_a_resumed_stage_shows_its_step_0_eval_once(tmp_path):
    """A resume rewrites metrics.jsonl (the records past the checkpoint dropped) and evaluates step 0 again:
    the records that were there before are not news, the new eval is, once."""
    path = tmp_path / "metrics.jsonl"
    eval0 = {"kind": "eval", "stage": "s1", "step": 0, "val_loss": 5.0, "val_ppl": 148.41}
    path.write_text(json.dumps(eval0) + "\n" + json.dumps(train(1)) + "\n")
    display, out = display_to_string()
    stage = display.stage("s1", 40, path)
    assert stage.follower.poll() == []
    kept = tmp_path / "kept"
    kept.write_text(json.dumps(eval0) + "\n")  # the worker's truncate_stage: step 1 was past the checkpoint
    kept.replace(path)
    with open(path, "a") as f:
        f.write(json.dumps(eval0) + "\n")  # the same eval, run again
    for record in stage.follower.poll():
        stage.handle(record)
    assert out.getvalue().count("eval at step 0") == 1


def test_a_tagged_display_puts_the_run_on_every_line(tmp_path):
    out = io.StringIO()
    display = RunDisplay(interactive=False, console=Console(file=out, width=80), tag="tiny-seed2")
    stage = display.stage("s1", 10, tmp_path / "metrics.jsonl")
    stage.handle({"kind": "eval", "stage": "s1", "step": 0, "val_loss": 4.5, "val_ppl": 90.0})
    for step in range(1, 11):
        stage.handle(train(step), now=float(step))
    with display.activity("measuring the CPU's peak FLOP/s for MFU (once per run)"):
        pass
    display.print("[tiny-seed2] already tagged")
    display.stage_done("s1", {**STAGE_RESULT})
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    text_lines = [line for line in lines if not line.startswith(("┏", "┃", "┡", "│", "└", "━", "─"))]
    assert text_lines and all(line.startswith("[tiny-seed2] ") for line in text_lines), text_lines
    assert "[tiny-seed2] already tagged" in lines  # not tagged twice
    assert display.tagged("") == "[tiny-seed2] " and RunDisplay(interactive=False).tagged("x") == "x"


STAGE_RESULT = {
    "params": 196_736,
    "tokens": 10_240,
    "stage_tokens": 10_240,
    "flops": 1.2e10,
    "val_loss": 4.6,
    "val_ppl": 99.48,
    "wall_seconds": 12.0,
    "mfu": 1.0,
    "steps": 49,
}


def test_a_stage_that_ends_worse_than_it_started_says_so_and_mfu_is_never_shown_as_a_cap(tmp_path):
    display, out = display_to_string()
    display.stage_done("grown-2m", {**STAGE_RESULT, "start_val_loss": 4.5, "start_val_ppl": 90.02})
    text = out.getvalue()
    assert "ended worse than it started: val ppl 90.02 → 99.48 in 49 steps" in text
    assert "100.0%" not in text and " — │" in text  # MFU 1: the stage's rate set the peak, not comparable
    display, out = display_to_string()
    display.stage_done("s1", {**STAGE_RESULT, "start_val_loss": 4.7, "start_val_ppl": 109.9, "mfu": 0.25})
    assert "worse" not in out.getvalue() and "25.0%" in out.getvalue()
