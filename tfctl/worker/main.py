"""`python -m tfctl.worker SPEC.json`: train one stage on this rank. Every rank reads the same spec.

Started by the `deepspeed` launcher, `torchrun`, or alone (world size 1: the rendezvous env is filled in).

Exit codes: 0 done (or paused by --max-steps-this-run), 1 training error, 2 user error (bad spec, missing
data), 3 non-finite loss (the last good checkpoint is intact), 75 preempted (SIGUSR1/SIGTERM or the
orchestrator's stop file: a checkpoint at the step it was on, see preemption.py), 130 interrupted.
"""

import argparse
import logging
import os
import socket
import sys
import time

from tfctl.errors import TrainingError, UserError
from tfctl.stage.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_TRAINING_ERROR, EXIT_USER_ERROR
from tfctl.stage.extensions import bound_torch_lock_waits, use_environment_extensions_dir
from tfctl.stage.spec import StageSpec
from tfctl.stage.watchdog import watch_orchestrator
from tfctl.worker.ds_ops import release_shared_memory_name, skip_shared_memory_op
from tfctl.worker.shutdown import leave_process_group
from tfctl.worker.stage import StageTrainer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfctl.worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", help="the stage spec JSON written by the orchestrator")
    parser.add_argument(
        "--max-steps-this-run",
        type=int,
        default=None,
        help="stop (with a checkpoint) after this many steps; rerun to continue",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def fill_single_process_env() -> None:
    """A plain `python -m tfctl.worker` is world size 1: give torch.distributed a rendezvous of its own."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def init_distributed() -> None:
    import deepspeed
    from deepspeed.accelerator import get_accelerator
    from deepspeed.utils import logger as ds_logger

    ds_logger.setLevel(logging.WARNING)
    use_environment_extensions_dir()
    bound_torch_lock_waits()
    if os.environ["WORLD_SIZE"] == "1":
        skip_shared_memory_op()
    deepspeed.init_distributed(dist_backend=get_accelerator().communication_backend_name(), verbose=False)
    release_shared_memory_name()


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    if args.local_rank is not None:
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    rank = os.environ.get("RANK", "0")
    trainer = None
    try:
        try:
            spec = StageSpec.load(args.spec)
        except (OSError, ValueError, TypeError) as error:
            raise UserError(f"{args.spec}: not a usable stage spec ({error})") from None
        watch_orchestrator()
        fill_single_process_env()
        init_distributed()
        trainer = StageTrainer(spec, args.max_steps_this_run, started)
        trainer.setup()
        if trainer.train():
            trainer.finish()
        else:
            trainer.say(trainer.stop_message())
        code = EXIT_OK
    except UserError as error:
        print(f"tfctl worker (rank {rank}): {error}", file=sys.stderr, flush=True)
        code = EXIT_USER_ERROR
    except TrainingError as error:
        print(f"tfctl worker (rank {rank}): {error}", file=sys.stderr, flush=True)
        if trainer is not None:
            trainer.record_error(error, getattr(error, "step", trainer.progress.step))
        code = getattr(error, "exit_code", EXIT_TRAINING_ERROR)
    except KeyboardInterrupt:
        print(f"tfctl worker (rank {rank}): interrupted", file=sys.stderr, flush=True)
        code = EXIT_INTERRUPTED
    if trainer is not None:
        trainer.close(code)
    if code == EXIT_OK:
        leave_process_group()  # every rank leaves together: rank 0's export is on disk before anyone exits
    return code


if __name__ == "__main__":
    sys.exit(main())
