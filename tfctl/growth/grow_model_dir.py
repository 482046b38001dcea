"""`grow_model_dir`: a model directory in, a grown and verified model directory out.

The edge of the growth package: reads and writes files, turns the user's mistakes into UserError.
"""

import dataclasses
import functools
import math
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from tfctl.errors import UserError
from tfctl.growth.depth import PLACEMENTS, layer_sources
from tfctl.growth.optimizer import flatten_moments, grow_optimizer_state, unflatten_moments
from tfctl.growth.state_dict import grown_blocks, plan_growth, state_shapes
from tfctl.growth.target import target_config
from tfctl.growth.tokens import DEFAULT_POLICY, POLICIES
from tfctl.growth.verify import (
    PRESERVE_TOLERANCE,
    GrowthReport,
    default_probe,
    probe_logits_and_loss,
    verify_written_growth,
)
from tfctl.model import TokenformerConfig
from tfctl.model_dir.config import TOKENIZER, WEIGHTS, load_model_config
from tfctl.model_dir.optimizer_file import OPTIMIZER_FILE, load_moments_file, save_moments_file
from tfctl.model_dir.safetensors_io import TensorReader, WrittenBytes, write_tensors
from tfctl.model_dir.weights import check_finite, map_state_dict, model_dir_writer, write_model_files

OPTIMIZER_CHOICES = ("reset", "carry")
BACKGROUND_WRITE = True  # write the grown file in a thread, overlapping the growth (same bytes either way)
IN_FLIGHT = 3  # blocks the writer thread may lag behind the growth: it catches up while new values are drawn
VERIFY_FOLLOWING = True  # check the grown file while it is written, a block behind the writer (same checks)
DIRECT_IO = True  # write and read back the grown file past the page cache, where the file system allows it
SPARSE = True  # long runs of zeros (preserve's new key tokens) left as holes: not written, read back as zeros


def _check_choice(option: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def check_room(out: Path, layout: dict) -> None:
    """The grown weights must fit on the disk `out` goes to: refused from the plan, before allocating."""
    size = sum(math.prod(shape) * dtype.itemsize for dtype, shape in layout.values())
    where = next(p for p in (out, *out.absolute().parents) if p.exists())
    free = shutil.disk_usage(where).free
    if size > free:
        raise UserError(
            f"{out}: the grown weights need {size / 1e9:.1f} GB, {where} has {free / 1e9:.1f} GB free"
        )


def write_then_verify(
    path: Path, layout: dict, pieces, verify: Callable[[TensorReader], GrowthReport]
) -> tuple[GrowthReport, float, float]:
    """Write the grown file (`write_tensors`), then `verify` it, read back from the file: (the report, the
    seconds waiting for the disk, the seconds verifying). The plain version of `write_and_verify_following`."""
    write_seconds = write_tensors(
        path,
        layout,
        pieces,
        metadata={"format": "pt"},
        background=BACKGROUND_WRITE,
        direct=DIRECT_IO,
        in_flight=IN_FLIGHT,
        sparse=SPARSE,
    )
    start = time.perf_counter()
    with TensorReader(path, direct=DIRECT_IO) as reader:
        report = verify(reader)
    return report, write_seconds, time.perf_counter() - start


def write_and_verify_following(
    path: Path, layout: dict, pieces, verify: Callable[[TensorReader], GrowthReport]
) -> tuple[GrowthReport, float, float]:
    """`write_then_verify` with the checks in a thread that follows the writer: `verify` reads each tensor
    back from the file as soon as the writer has written it (`TensorReader` with `WrittenBytes`), so the
    algebra and the probe run, block by block, while the next blocks are produced and written, and while the
    disk catches up at the end (fsync). The same bytes are read and checked as by `write_then_verify`.
    A failed check stops the writing at the next tensor. Returns the seconds waited for the disk and for
    the checks beyond what overlapped."""
    written = WrittenBytes()

    def follow() -> GrowthReport:
        with TensorReader(path, written, direct=DIRECT_IO) as reader:
            return verify(reader)

    def unless_failed(pieces):
        for piece in pieces:
            if checked.done() and checked.exception() is not None:
                raise checked.exception()  # stops the writer; nothing is left at `out`
            yield piece

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="growth-verify") as pool:
        checked = pool.submit(follow)
        try:
            write_seconds = write_tensors(
                path,
                layout,
                unless_failed(pieces),
                metadata={"format": "pt"},
                background=BACKGROUND_WRITE,
                written=written,
                direct=DIRECT_IO,
                in_flight=IN_FLIGHT,
                sparse=SPARSE,
            )
            start = time.perf_counter()
            report = checked.result()
        except BaseException as error:
            written.end(error)  # a check still waiting for bytes (or still reading) stops at its next read
            raise
    return report, write_seconds, time.perf_counter() - start


def grow_model_dir(
    source: str | Path,
    out: str | Path,
    to: str | int | TokenformerConfig,
    layers: int | None = None,
    init: str = DEFAULT_POLICY,
    optimizer: str = "reset",
    seed: int = 0,
    probe: torch.Tensor | None = None,
    placement: str = "append",
) -> GrowthReport:
    """Grow the model directory `source` to `to` (see `target_config`) and write it to `out`.

    A streaming copy: the source is memory-mapped, the grown file written tensor by tensor as it is produced
    (no grown tensor exists whole in memory; O_DIRECT, zero runs left as holes), and checked on what was
    written, read back block by block as soon as each block is in the file: the tensor algebra
    (`check_grown_tensors`) and the logits on `probe` (default: a fixed short batch). A `preserve` growth that
    moved the logits is refused and nothing is left at `out`. `optimizer="carry"` also grows
    `optimizer.safetensors`; "reset" leaves it behind. The report's `seconds` cover everything, split into
    read, grow, write (the waits for the disk, fsync included) and verify (the wait for the checks after
    the last write); `out/export.json` keeps the report.
    """
    start = time.perf_counter()
    source, out = Path(source), Path(out)
    _check_choice("--init", init, POLICIES)
    _check_choice("--optimizer", optimizer, OPTIMIZER_CHOICES)
    _check_choice("--placement", placement, PLACEMENTS)
    config = load_model_config(source)
    if not isinstance(config, TokenformerConfig):
        raise UserError(
            f"{source}: a baseline {config.family} model; growth appends parameter tokens, "
            "which only a Tokenformer has"
        )
    if out.exists():
        raise UserError(f"{out}: already exists; choose another -o or remove it")
    if optimizer == "carry" and not (source / OPTIMIZER_FILE).is_file():
        raise UserError(f"{source}: --optimizer carry needs {OPTIMIZER_FILE}, which this directory lacks")
    try:
        target = target_config(config, to, layers)
    except ValueError as error:
        raise UserError(f"--to {to}: {error}") from None

    read_start = time.perf_counter()
    state = map_state_dict(source)
    check_finite(state, source)  # one pass over the mapping (then in the page cache for the growth)
    read_seconds = time.perf_counter() - read_start
    try:
        new_config, sources = plan_growth(config, state, target, init=init, placement=placement)
    except ValueError as error:
        raise UserError(f"{source}: {error}") from None
    # the source's logits first: a model whose loss is not finite is refused before anything is written
    probe = default_probe(new_config) if probe is None else probe
    before = probe_logits_and_loss(config, state, probe)
    if not math.isfinite(before[1]):
        raise UserError(f"{source}: the model's loss is not finite ({before[1]}); it cannot be grown")
    provenance = {
        "source": str(source),
        "to": str(to),
        "layers": new_config.n_layers,
        "init": init,
        "placement": placement,
        "optimizer": optimizer,
        "seed": seed,
    }
    tokenizer = source / TOKENIZER if (source / TOKENIZER).is_file() else None
    shapes = state_shapes(new_config)
    layout = {name: (state["embedding.weight"].dtype, shape) for name, shape in shapes.items()}
    check_room(out, layout)
    with model_dir_writer(out) as tmp:
        # the grown file is written as its tensors are produced: old rows from the source's mapping, new rows
        # from reused buffers; the checks read it back block by block into one reused set of tensors, as
        # soon as each block is written (VERIFY_FOLLOWING) or after the whole file
        grow_start = time.perf_counter()
        # a writer thread writes up to IN_FLIGHT blocks while the next is produced (write_tensors), so the new
        # rows rotate through one buffer more
        pieces = grown_blocks(state, new_config, sources, init=init, seed=seed, buffers=IN_FLIGHT + 1)

        verify = functools.partial(  # verify(reader): the checks of the file that `reader` reads
            verify_written_growth,
            config,
            state,
            new_config,
            sources=sources,
            init=init,
            probe=probe,
            before=before,
        )
        write = write_and_verify_following if VERIFY_FOLLOWING else write_then_verify
        report, write_seconds, verify_seconds = write(tmp / WEIGHTS, layout, pieces, verify)
        grow_seconds = time.perf_counter() - grow_start - write_seconds - verify_seconds
        if init == "preserve" and not report.max_abs_logit_diff <= PRESERVE_TOLERANCE:
            raise RuntimeError(
                f"preserve growth moved the logits by {report.max_abs_logit_diff:.3g} "
                f"(> {PRESERVE_TOLERANCE}): this is a bug in tfctl.growth"
            )
        report = dataclasses.replace(
            report,
            seconds=time.perf_counter() - start,
            init=init,
            verify_seconds=verify_seconds,
            read_seconds=read_seconds,
            grow_seconds=grow_seconds,
            write_seconds=write_seconds,
        )
        write_model_files(tmp, new_config, tokenizer, extra={"growth": {**provenance, **report.to_dict()}})
        del state
        if optimizer == "carry":  # after the weights, so both big state dicts are never alive at once;
            # inside the temporary directory, so a grown directory never lacks the optimizer its export.json names
            tensors, step = load_moments_file(source / OPTIMIZER_FILE)
            sources = layer_sources(config.n_layers, new_config.n_layers, placement)
            moments = grow_optimizer_state(unflatten_moments(tensors), shapes, sources)
            save_moments_file(flatten_moments(moments), step, tmp / OPTIMIZER_FILE)
    return report
