"""The checks every growth runs: the algebra of the grown tensors (old rows bit-identical, new keys zero, τ
held), and the same probe batch through the model before and after (max |Δlogits| and loss, in fp32)."""

import dataclasses
import math
import time
from collections.abc import Mapping

import torch

from tfctl.growth.depth import ZEROED_MODULES, source_name
from tfctl.model import build_model
from tfctl.model.layers import Rotary
from tfctl.model.sizes import count_params
from tfctl.model_dir.safetensors_io import TensorReader

PRESERVE_TOLERANCE = 1e-5  # max |Δlogits| a `preserve` growth may show in fp32
PROBE_SEED = 1234
LARGE_MODEL = 500_000_000  # above this many parameters the default probe shrinks to keep the check cheap


@dataclasses.dataclass
class GrowthReport:
    params_before: int
    params_after: int
    max_abs_logit_diff: float
    loss_before: float
    loss_after: float
    seconds: float  # verify_growth: the probe; grow_model_dir: everything (read + grow + write + verify)
    probe_tokens: int = 0
    init: str = ""
    verify_seconds: float = (
        0.0  # grow_model_dir: waiting for the algebra check + the probe (beyond the overlap)
    )
    read_seconds: float = 0.0  # mapping the source
    grow_seconds: float = 0.0  # producing the new rows
    write_seconds: float = (
        0.0  # waiting for the grown file's writes (beyond the growth they overlap), fsync included
    )
    checked_bytes: int = 0  # bytes of the grown file the algebra check compared

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def default_probe(config) -> torch.Tensor:
    """Fixed random token ids: 2 rows of 32 (+1 target), or 1 row of 8 for a model above LARGE_MODEL, so
    the check of a 1.4B model costs ~20 GFLOP on CPU. Every parameter token takes part in every position,
    so a few positions already see any change of the function."""
    batch, length = (2, 32) if count_params(config) <= LARGE_MODEL else (1, 8)
    generator = torch.Generator().manual_seed(PROBE_SEED)
    return torch.randint(0, config.vocab_size, (batch, min(length, config.seq_len) + 1), generator=generator)


def model_from_state(config, state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """The model of `config` holding `state_dict` in fp32, sharing its memory (no copy for fp32 tensors)."""
    model = build_model(config, device="meta")
    model.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True, assign=True)
    # the rotary tables are non-persistent buffers, still on meta: build them for real
    model.rotary = Rotary(config.d_model // config.n_heads, config.rotary_pct, config.seq_len)
    return model.eval()


def _tau(config, kind: str) -> float:
    return config.scale(kind) or math.sqrt(getattr(config, f"{kind}_tokens"))


def check_grown_tensors(
    old_config,
    old_state: Mapping[str, torch.Tensor],
    new_config,
    new_state: Mapping[str, torch.Tensor],
    sources: list[int | None],
    init: str,
) -> int:
    """The algebra of a growth, tensor by tensor (cheap: one pass of comparisons, no matmul): every old
    tensor is the first rows of its grown tensor, bit for bit; for `preserve` the new key tokens are zero,
    the new blocks' output value tokens are zero and every layer kind keeps its τ. Raises RuntimeError (a
    bug in tfctl.growth) on the first violation; returns the bytes compared."""
    checked = 0
    for name, grown in new_state.items():
        old_name = source_name(name, sources)
        if old_name is None:
            zero = init == "preserve" and name.endswith(ZEROED_MODULES)
            if zero and grown.any():
                raise RuntimeError(f"growth bug: {name} of a new block is not zero")
            checked += grown.nbytes if zero else 0
            continue
        old = old_state[old_name]
        rows = old.shape[0] if grown.dim() else 0
        if not torch.equal(grown[:rows] if grown.dim() else grown, old):
            raise RuntimeError(f"growth bug: {name} does not start with {old_name} bit for bit")
        checked += old.nbytes
        if init == "preserve" and name.endswith(".key_tokens") and grown[rows:].any():
            raise RuntimeError(f"growth bug: new key tokens of {name} are not zero")
        checked += grown[rows:].nbytes if name.endswith(".key_tokens") else 0
    for kind in ("qkv", "proj", "ffn") if init == "preserve" else ():
        if _tau(new_config, kind) != _tau(old_config, kind):
            raise RuntimeError(f"growth bug: τ of the {kind} layers moved under preserve growth")
    return checked


def streamed_model(config, reader: TensorReader, on_tensors=None) -> torch.nn.Module:
    """The model of `config` with its weights in the file of `reader`, read one block at a time: a forward
    pre-hook reads the block's weights, in one read into the reader's one buffer, just before it runs. A probe
    through a model of any size then holds one block's weights, and reading the file costs a copy (or a
    transfer from the disk, `direct`), not a page fault per 4 KiB. The other tensors (embedding, final norm)
    are read just before their module first runs too, so a forward reads the file in its order and can
    follow a writer (`TensorReader`'s `written`). `on_tensors(state)` sees every tensor as read (a dict per module or block)."""
    model = build_model(config, device="meta")
    outer = {n: reader.empty(n) for n in reader.names() if not n.startswith("blocks.")}
    unexpected = model.load_state_dict(outer, strict=False, assign=True).unexpected_keys
    if unexpected:
        raise RuntimeError(f"growth bug: unexpected tensors {unexpected[:3]} in the grown file")
    owners: dict[str, list[str]] = {}
    for name in outer:
        owners.setdefault(name.rpartition(".")[0], []).append(name)
    for owner, names in owners.items():

        def load_outer(module, args, names=names):
            tensors = {n: reader.read_into(n, outer[n]) for n in names}
            if on_tensors:
                on_tensors(tensors)

        model.get_submodule(owner).register_forward_pre_hook(load_outer)
    block_names = list(model.blocks[0].state_dict())
    for index, block in enumerate(model.blocks):

        def load(module, args, index=index):
            tensors = reader.read_tensors([f"blocks.{index}.{n}" for n in block_names])
            module.load_state_dict(
                {n: tensors[f"blocks.{index}.{n}"] for n in block_names}, strict=True, assign=True
            )
            if on_tensors:
                on_tensors(tensors)

        block.register_forward_pre_hook(load)
    model.rotary = Rotary(config.d_model // config.n_heads, config.rotary_pct, config.seq_len)
    return model.eval()


def verify_written_growth(
    old_config,
    old_state: Mapping[str, torch.Tensor],
    new_config,
    reader: TensorReader,
    sources: list[int | None],
    init: str,
    probe: torch.Tensor | None = None,
    before: tuple[torch.Tensor, float] | None = None,
) -> GrowthReport:
    """`check_grown_tensors` and the probe of `verify_growth` in one pass over the written file: the grown
    model streams through `streamed_model`, each block's tensors checked as they are read. `before`: the
    source's `probe_logits_and_loss` on the same probe, when the caller already has it."""
    start = time.perf_counter()
    probe = default_probe(new_config) if probe is None else probe
    logits_before, loss_before = before or probe_logits_and_loss(old_config, old_state, probe)
    checked, seen = 0, set()

    def check(tensors):
        nonlocal checked
        seen.update(tensors)
        checked += check_grown_tensors(old_config, old_state, new_config, tensors, sources, init)

    with torch.no_grad():
        logits, loss = streamed_model(new_config, reader, check)(probe[:, :-1], probe[:, 1:])
    unread = [name for name in reader.names() if name not in seen]
    if unread:
        raise RuntimeError(f"growth bug: {unread[:3]} of the grown file are not tensors of its model")
    return GrowthReport(
        params_before=count_params(old_config),
        params_after=count_params(new_config),
        max_abs_logit_diff=(logits.float() - logits_before).abs().max().item(),
        loss_before=loss_before,
        loss_after=loss.item(),
        seconds=time.perf_counter() - start,
        probe_tokens=probe[:, :-1].numel(),
        checked_bytes=checked,
    )


@torch.no_grad()
def probe_logits_and_loss(config, state_dict, probe: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Logits (fp32) and loss of the model of `config` holding `state_dict` on `probe` (inputs + targets)."""
    model = model_from_state(config, state_dict)
    logits, loss = model(probe[:, :-1], probe[:, 1:])
    return logits.float(), loss.item()


def verify_growth(
    old_config,
    old_state: Mapping[str, torch.Tensor],
    new_config,
    new_state: Mapping[str, torch.Tensor],
    probe: torch.Tensor | None = None,
) -> GrowthReport:
    """Run `probe` (token ids (B, T+1): inputs and next-token targets) through both models.

    One model is alive at a time, so the check costs the grown model plus one batch of activations.
    """
    start = time.perf_counter()
    probe = default_probe(new_config) if probe is None else probe
    logits_before, loss_before = probe_logits_and_loss(old_config, old_state, probe)
    logits_after, loss_after = probe_logits_and_loss(new_config, new_state, probe)
    return GrowthReport(
        params_before=count_params(old_config),
        params_after=count_params(new_config),
        max_abs_logit_diff=(logits_after - logits_before).abs().max().item(),
        loss_before=loss_before,
        loss_after=loss_after,
        seconds=time.perf_counter() - start,
        probe_tokens=probe[:, :-1].numel(),
    )
