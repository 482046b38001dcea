"""MFU never passes 100 %: a rate above the peak raises the peak, the stage records which peak it used, and
the run keeps the higher one for its later stages and its baselines."""

import contextlib
import json

import pytest
import torch

from tfctl.recipe.schema import LaunchSection
from tfctl.run import peak as run_peak
from tfctl.run.state import RunState
from tfctl.stage.throughput import Peak

LAUNCH = LaunchSection(nproc_per_node=1)
pytestmark = pytest.mark.usefixtures("machine_peak_cache")  # each test its own machine cache


class Display:
    def __init__(self):
        self.activities, self.lines = [], []

    @contextlib.contextmanager
    def activity(self, text):
        self.activities.append(text)
        yield

    def print(self, text):
        self.lines.append(text)


def test_a_rate_above_the_peak_raises_it_so_mfu_stays_at_most_one():
    peak = Peak(1e9, "measured: best of 10")  # measured on a busy machine: too low
    rates = [0.5e9, 1.16e9, 0.9e9, 1.3e9, 1.2e9]  # model FLOP/s per device of successive steps
    mfus = []
    for step, rate in enumerate(rates, 1):
        peak.observe(rate, f"step {step}")
        mfus.append(peak.mfu(rate))
    assert max(mfus) <= 1.0
    assert mfus[1] == pytest.approx(1.0) and mfus[3] == pytest.approx(1.0)  # the steps that set the peak
    assert peak.flops == 1.3e9
    assert peak.source == "step 4's rate, above the 1e+09 FLOP/s of measured: best of 10"


def test_a_rate_below_the_peak_leaves_it():
    peak = Peak(2e9, "the recipe's train.peak_flops")
    assert not peak.observe(2e9, "step 1") and peak.mfu(1e9) == 0.5
    assert peak.source == "the recipe's train.peak_flops"


def test_the_run_measures_once_records_how_and_keeps_a_stage_raised_peak(tmp_path, monkeypatch):
    import tfctl.stage.throughput as throughput

    calls = []
    monkeypatch.setattr(run_peak, "_has_gpu", lambda: False)
    monkeypatch.setattr(
        throughput, "measure_cpu_peak_and_share", lambda threads: (calls.append(threads) or 1e9, 1.0)
    )
    state = RunState(tmp_path / "state.json", {"name": "r", "stages": {}})
    display = Display()

    first = run_peak.run_cpu_peak(state, LAUNCH, display, "s1")
    assert first["flops"] == 1e9 and first["source"].startswith("measured before stage s1: best of 10 fp32")
    assert run_peak.run_cpu_peak(state, LAUNCH, display, "s2") == first and len(calls) == 1  # once per run

    # s1's worker saw a step faster than 1e9: its stage_end carries the raised peak
    raised = {"peak_flops": 1.4e9, "peak_source": "step 7's rate, above ..."}
    assert run_peak.raise_run_cpu_peak(state, LAUNCH, "s1", raised)
    reloaded = RunState.load(tmp_path / "state.json", "r")
    later = run_peak.run_cpu_peak(reloaded, LAUNCH, display, "s2")
    assert later == {"flops": 1.4e9, "source": "stage s1: step 7's rate, above ..."}
    assert len(calls) == 1
    # a lower stage peak never lowers the run's
    assert not run_peak.raise_run_cpu_peak(reloaded, LAUNCH, "s2", {"peak_flops": 1.2e9})
    # a baseline inherits the raised peak, with where it came from
    (inherited,) = run_peak.inherited_cpu_peaks(reloaded.data, "tiny").values()
    assert inherited["flops"] == 1.4e9 and inherited["source"].startswith("tiny's peak, stage s1: step 7's")


def test_an_older_runs_bare_number_is_read_and_a_broken_record_measured_again(tmp_path, monkeypatch):
    import tfctl.stage.throughput as throughput

    monkeypatch.setattr(run_peak, "_has_gpu", lambda: False)
    monkeypatch.setattr(throughput, "measure_cpu_peak_and_share", lambda threads: (3e9, 1.0))
    key = run_peak._key(LAUNCH)[0]
    state = RunState(tmp_path / "state.json", {"name": "r", "stages": {}, "cpu_peak_flops": {key: 2e9}})
    assert run_peak.run_cpu_peak(state, LAUNCH, Display(), "s1")["flops"] == 2e9
    state.data["cpu_peak_flops"][key] = {"flops": "fast"}
    assert run_peak.run_cpu_peak(state, LAUNCH, Display(), "s1")["flops"] == 3e9


def _measuring(monkeypatch, *measurements):
    """run_cpu_peak measures these (flops, CPU share) in turn, one per run."""
    import tfctl.stage.throughput as throughput

    queue = list(measurements)
    monkeypatch.setattr(run_peak, "_has_gpu", lambda: False)
    monkeypatch.setattr(throughput, "measure_cpu_peak_and_share", lambda threads: queue.pop(0))
    return queue


def test_two_runs_on_one_machine_divide_by_the_best_peak_seen_here(tmp_path, monkeypatch, machine_peak_cache):
    # the first run measured an idle machine; the second measured it busy, at less than half the rate
    busy = [(51e9, 0.45), (50e9, 0.4), (49e9, 0.5)]  # the second run measures three times, busy throughout
    _measuring(monkeypatch, (116e9, 0.98), *busy, (130e9, 1.0))
    first = run_peak.run_cpu_peak(RunState(tmp_path / "a.json", {"stages": {}}), LAUNCH, Display(), "s1")
    display = Display()
    second = run_peak.run_cpu_peak(RunState(tmp_path / "b.json", {"stages": {}}), LAUNCH, display, "s1")
    assert display.lines == [
        f"MFU divides by a CPU peak of 1.16e+11 FLOP/s (the best seen on this machine, {machine_peak_cache})"
    ]
    assert first["flops"] == second["flops"] == 116e9  # the same stage rate gives the same MFU in both
    assert "busy" not in first["source"]
    assert second["source"].startswith(f"the best peak seen on this machine ({machine_peak_cache})")
    assert "measured now 5.1e+10" in second["source"]
    # a run that measures higher raises the machine's peak for the runs after it
    third = run_peak.run_cpu_peak(RunState(tmp_path / "c.json", {"stages": {}}), LAUNCH, Display(), "s1")
    assert third["flops"] == 130e9 and third["source"].startswith("measured before stage s1")
    (key,) = json.loads(machine_peak_cache.read_text())
    assert key.endswith(f"thread(s) | torch {torch.__version__} | fp32")


def test_a_busy_measurement_is_taken_again_says_so_and_a_raised_stage_peak_is_kept(tmp_path, monkeypatch):
    queue = _measuring(monkeypatch, (40e9, 0.5), (45e9, 0.6), (42e9, 0.5), (99e9, 1.0))
    state = RunState(tmp_path / "state.json", {"stages": {}})
    record = run_peak.run_cpu_peak(state, LAUNCH, Display(), "s1")
    assert record["flops"] == 45e9 and len(queue) == 1  # three tries, all busy: the best of them
    assert "the machine was busy (the best timing got 60% of its threads' time)" in record["source"]
    queue.clear()
    queue.extend([(30e9, 0.4), (80e9, 0.95), (99e9, 1.0)])  # busy, then free: it stops at the free one
    other = run_peak.run_cpu_peak(RunState(tmp_path / "o.json", {"stages": {}}), LAUNCH, Display(), "s1")
    assert other["flops"] == 80e9 and "busy" not in other["source"] and queue == [(99e9, 1.0)]
    # a stage of the first run ran faster than any measurement: the machine keeps that rate as its peak
    raised = {"peak_flops": 120e9, "peak_source": "step 3's rate"}
    assert run_peak.raise_run_cpu_peak(state, LAUNCH, "s1", raised)
    queue[:] = [(45e9, 1.0)]
    later = run_peak.run_cpu_peak(RunState(tmp_path / "later.json", {"stages": {}}), LAUNCH, Display(), "s1")
    assert later["flops"] == 120e9 and "step 3's rate" in later["source"]


def test_an_unreadable_machine_cache_is_ignored_and_rewritten(tmp_path, monkeypatch, machine_peak_cache):
    machine_peak_cache.write_text("{not json")
    _measuring(monkeypatch, (10e9, 1.0))
    assert (
        run_peak.run_cpu_peak(RunState(tmp_path / "s.json", {"stages": {}}), LAUNCH, Display(), "s1")["flops"]
        == 10e9
    )
    assert next(iter(json.loads(machine_peak_cache.read_text()).values()))["flops"] == 10e9
