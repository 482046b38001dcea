"""metrics.jsonl (resume without duplicates), the W&B adapter (offline, disabled, failing), the console."""

import json
import logging

from tfctl.stage.spec import WandbSpec
from tfctl.tracking import Console, MetricsFile, Tracker, read_metrics
from tfctl.tracking.wandb_run import WandbRun, resolve_mode


def record(kind, stage, step, **values):
    return {"kind": kind, "stage": stage, "step": step, "tokens": step * 10, "flops": step * 1e3, **values}


def test_resume_drops_the_records_past_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path)
    metrics.write(record("stage_end", "s0", 5, val_loss=1.0))
    for step in range(1, 8):
        metrics.write(record("train", "s1", step, loss=float(step)))
    metrics.write(record("error", "s1", 7, message="boom"))
    metrics.close()
    with open(path, "a") as f:
        f.write('{"kind": "train", "sta')  # a torn line from a crash
    assert MetricsFile(path).truncate_stage("s1", after_step=4) == 4
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["kind"], r["stage"], r["step"]) for r in kept] == [
        ("stage_end", "s0", 5),
        *[("train", "s1", s) for s in range(1, 5)],
        ("error", "s1", 7),
    ]


def test_readers_dedupe_keeping_the_last_and_nan_is_visible(tmp_path):
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path)
    metrics.write(record("train", "s0", 1, loss=9.0))
    metrics.write(record("train", "s0", 2, loss=float("nan")))
    metrics.write(record("train", "s0", 1, loss=3.0))
    metrics.close()
    rows = read_metrics(path, kind="train", stage="s0")
    assert [(r["step"], r["loss"]) for r in rows] == [(2, "nan"), (1, 3.0)]
    assert read_metrics(tmp_path / "none.jsonl") == []


def test_wandb_mode_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert resolve_mode("online") == "offline"  # no key: never a login prompt
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("online") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("online") == "disabled"


def test_wandb_disabled_imports_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = WandbRun(WandbSpec(), "abc", {}, tmp_path)
    assert not run.active
    run.log(record("train", "s0", 1, loss=1.0))
    run.finish()
    assert not any(tmp_path.iterdir())


def test_a_failing_wandb_warns_and_training_goes_on(monkeypatch, tmp_path, caplog):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")

    def broken(**kwargs):
        raise RuntimeError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken)
    with caplog.at_level(logging.WARNING):
        run = WandbRun(WandbSpec(dir=str(tmp_path)), "abc", {}, tmp_path)
    assert not run.active and "wandb is down" in caplog.text
    tracker = Tracker(tmp_path / "metrics.jsonl", Console("s0", 10, interactive=False), run)
    tracker.log(record("train", "s0", 1, loss=1.0, lr=0.1, tokens_per_second=5.0, grad_norm=1.0, mfu=0.1))
    tracker.close()
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["loss"] == 1.0


def test_console_prints_plain_lines_off_a_terminal(capsys):
    console = Console("s0", 10, interactive=False)
    console.train(
        record("train", "s0", 3, loss=2.5, lr=1e-3, tokens_per_second=1234.0, grad_norm=0.5, mfu=0.01)
    )
    console.eval(record("eval", "s0", 3, val_loss=2.4, val_ppl=11.0))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[s0] step 3/10  loss 2.5000  lr 1.00e-03  1,234 tok/s")
    assert out[1] == "[s0] step 3  val_loss 2.4000  val_ppl 11.00"


def test_console_progress_bar_on_a_terminal():
    console = Console("s0", 10, interactive=True)
    console.train(
        record("train", "s0", 4, loss=2.5, lr=1e-3, tokens_per_second=10.0, grad_norm=0.5, mfu=0.01)
    )
    assert console._progress.tasks[0].completed == 4
    console.close()


def train_record(step):
    return record(
        "train", "s0", step, loss=1.0 / step, lr=1e-3, tokens_per_second=10.0, grad_norm=0.5, mfu=0.1
    )


def stage_records():
    steps = [train_record(step) for step in range(1, 8)]
    return [*steps[:5], record("eval", "s0", 5, val_loss=2.0, val_ppl=7.4), *steps[5:]]


def test_batched_records_reach_the_file_in_order_and_the_console_once_per_batch(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    tracker = Tracker(path, Console("s0", 7, interactive=False), flush_seconds=3600)
    tracker.log(record("eval", "s0", 0, val_loss=2.2, val_ppl=9.0))  # the step-0 evaluation
    for one in stage_records()[:3]:
        tracker.log(one)
    assert [r["step"] for r in read_metrics(path, kind="train")] == [1]  # the first at once, the rest held
    for one in stage_records()[3:]:
        tracker.log(one)
    assert [(r["kind"], r["step"]) for r in read_metrics(path)][-2:] == [("train", 5), ("eval", 5)]
    tracker.flush()  # what a checkpoint does first
    assert [r["step"] for r in read_metrics(path, kind="train")] == list(range(1, 8))
    tracker.close()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["0", "1/7", "5/7", "5", "7/7"]  # the latest of each batch


def test_batched_and_per_step_records_write_the_same_file(tmp_path):
    for name, seconds in (("batched", 3600), ("per-step", 0)):
        tracker = Tracker(tmp_path / name, Console("s0", 7, interactive=False), flush_seconds=seconds)
        for one in stage_records():
            tracker.log(one)
        tracker.close()
    assert (tmp_path / "batched").read_bytes() == (tmp_path / "per-step").read_bytes()
