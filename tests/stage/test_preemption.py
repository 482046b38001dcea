"""The two sides of a stop request, in this process: a rank's signal handlers and the orchestrator's."""

import os
import signal

import pytest

from tfctl.stage.preemption import STOP_FILE, PreemptionWatch, StopRequests


@pytest.fixture
def restore_handlers():
    saved = {number: signal.getsignal(number) for number in (signal.SIGUSR1, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("number", [signal.SIGUSR1, signal.SIGTERM])
def test_a_rank_survives_the_signal_and_reports_it(tmp_path, restore_handlers, number):
    watch = PreemptionWatch(tmp_path, rank=1, world_size=1)
    assert not watch.requested()
    os.kill(os.getpid(), number)
    assert watch.requested() and watch.signalled == number
    assert watch.agreed(device="cpu")


def test_rank_0_follows_the_orchestrator_s_stop_file(tmp_path, restore_handlers):
    rank0, rank1 = PreemptionWatch(tmp_path, 0, 1), PreemptionWatch(tmp_path, 1, 1)
    (tmp_path / STOP_FILE).touch()
    assert rank0.requested() and not rank1.requested()  # rank 1 learns it from the all-reduce


def test_the_orchestrator_writes_the_running_stage_s_stop_file(tmp_path, restore_handlers):
    requests = StopRequests()
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / STOP_FILE).touch()  # an earlier job's request
    with requests.installed():
        with requests.stage(tmp_path / "s1"):
            assert not (tmp_path / "s1" / STOP_FILE).exists()
            os.kill(os.getpid(), signal.SIGTERM)  # does not end this process
            assert requests.requested and (tmp_path / "s1" / STOP_FILE).exists()
        assert not (tmp_path / "s1" / STOP_FILE).exists()  # the stage's ranks are gone: nothing left behind
        (tmp_path / "s2").mkdir()
        with requests.stage(tmp_path / "s2"):  # a request made between stages reaches the next one at once
            assert (tmp_path / "s2" / STOP_FILE).exists()
    assert signal.getsignal(signal.SIGTERM) is not requests._on_signal
