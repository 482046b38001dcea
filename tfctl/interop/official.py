"""`tfctl import`: the official TokenFormer checkpoints (GPT-NeoX layout) as a tfctl model directory.

The official model is a GPT-NeoX pipeline, flattened as `sequential.<i>`:

    sequential.0.word_embeddings.weight                       → embedding.weight (tied output head)
    sequential.<i>.attention.{query,key,value}.{key,value}_param_tokens, i = 2 … L+1
                                                              → blocks.<i-2>.attention.{query,key,value}.{key,value}_tokens
    sequential.<i>.attention.proj.{key,value}_param_tokens    → blocks.<i-2>.attention.output.{key,value}_tokens
    sequential.<i>.mlp.{key,value}_param_tokens               → blocks.<i-2>.ffn.{key,value}_tokens
    sequential.<L+3>.norm.{weight,bias}                       → final_norm.{weight,bias}

Read from: a `pytorch_model.bin` (the Pile models, written by zero_to_fp32), a DeepSpeed checkpoint
directory (the OpenWebText2 354M: `latest` + `global_step*/layer_<i>-model_00-model_states.pt`, one file
per pipeline layer, or `mp_rank_00_model_states.pt` holding `module`). Always `weights_only=True`.
Block norms are non-parametric and rotary buffers are recomputed, so neither needs weights.
"""

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from tfctl.data.tokenizer import load_tokenizer, padded_vocab_size, tokenizer_file
from tfctl.errors import UserError
from tfctl.model import TokenformerConfig, build_model
from tfctl.model_dir.config import MODEL_OUTPUT
from tfctl.model_dir.weights import save_model_dir
from tfctl.outputs import claim_output

# heads of the released shapes (d_model → heads); other widths need --heads
OFFICIAL_HEADS = {768: 12, 1024: 16, 1280: 16, 1536: 16}
_BLOCK_KEY = re.compile(
    r"^sequential\.(\d+)\.(attention\.(query|key|value|proj)|mlp)\.(key|value)_param_tokens$"
)
_LAYER_FILE = re.compile(r"^layer_(\d+)-model_00-model_states\.pt$")
_IGNORED = re.compile(r"\.(rotary_emb\.inv_freq|attention\.bias|attention\.masked_bias)$")


def torch_load(path: Path) -> dict:
    if not path.is_file():  # a FIFO or a device would block or never end
        raise UserError(f"{path}: not a regular file")
    try:
        with (
            warnings.catch_warnings()
        ):  # torch warns about a legacy pickle's protocol: the refusal says enough
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not loadable as weights only ({reason.split('. ')[0][:200]})") from None


def deepspeed_tag_dir(path: Path) -> Path:
    """A DeepSpeed save directory (with `latest`) → its newest tag directory; a tag directory → itself."""
    for root in (path, path / "checkpoints"):
        if (root / "latest").is_file():
            try:
                tag = root / (root / "latest").read_text(encoding="utf-8").strip()
            except UnicodeDecodeError:
                raise UserError(f"{root / 'latest'}: not a UTF-8 tag name") from None
            if not tag.is_dir():
                raise UserError(f"{root / 'latest'}: names {tag.name}, which is not a directory")
            return tag
    return path


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat `sequential.<i>.…` state dict of an official checkpoint, float32."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint file or directory")
    if not path.is_dir() and not path.is_file():
        raise UserError(f"{path}: not a regular file or a directory (a pipe or a device?)")
    if path.is_dir():
        if (path / "pytorch_model.bin").is_file():
            return read_official_state(path / "pytorch_model.bin")
        tag = deepspeed_tag_dir(path)
        layers = sorted((int(m.group(1)), p) for p in tag.glob("*.pt") if (m := _LAYER_FILE.match(p.name)))
        if layers:
            state = {}
            for index, file in layers:
                part = torch_load(file)
                state.update(
                    {f"sequential.{index}.{key}": value for key, value in _tensors(part, file).items()}
                )
            return state
        if (tag / "mp_rank_00_model_states.pt").is_file():
            return read_official_state(tag / "mp_rank_00_model_states.pt")
        raise UserError(
            f"{path}: no pytorch_model.bin, DeepSpeed `latest`, layer_*-model_00-model_states.pt "
            "or mp_rank_00_model_states.pt here"
        )
    loaded = torch_load(path)
    if isinstance(loaded, dict) and isinstance(loaded.get("module"), dict):  # a DeepSpeed model-states file
        loaded = loaded["module"]
    return _tensors(loaded, path)


def _tensors(loaded, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UserError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    for key, value in loaded.items():  # a tiny file may declare a huge tensor over shared storage (stride 0)
        if value.numel() * value.element_size() > value.untyped_storage().nbytes():
            raise UserError(
                f"{path}: {key} declares {tuple(value.shape)} over a smaller storage; not a checkpoint"
            )
    return {key: value.float() for key, value in loaded.items()}


def _shape(state: dict, key: str, expected: tuple, source: str) -> torch.Tensor:
    if key not in state:
        raise UserError(f"{source}: missing {key}")
    if tuple(state[key].shape) != expected:
        raise UserError(f"{source}: {key} has shape {tuple(state[key].shape)}, expected {expected}")
    return state[key]


def convert_official(
    state: dict[str, torch.Tensor],
    source: str,
    heads: int | None = None,
    seq_len: int = 2048,
    rotary_pct: float = 0.25,
    norm: str = "l2_norm_gelu",
) -> tuple[TokenformerConfig, dict[str, torch.Tensor]]:
    """(config, tfctl state dict); the shapes are read off the tensors, every key accounted for."""
    embedding_key = "sequential.0.word_embeddings.weight"
    if embedding_key not in state:
        raise UserError(f"{source}: not an official TokenFormer checkpoint (no {embedding_key})")
    if state[embedding_key].dim() != 2:
        raise UserError(
            f"{source}: {embedding_key} has shape {tuple(state[embedding_key].shape)}, expected 2-D"
        )
    vocab_size, d = state[embedding_key].shape
    indices = sorted({int(m.group(1)) for key in state if (m := _BLOCK_KEY.match(key))})
    if not indices or indices != list(range(2, indices[-1] + 1)):
        raise UserError(f"{source}: block indices {indices[:3]}… are not 2, 3, …, L+1 (the official layout)")
    n_layers = len(indices)
    heads = heads or OFFICIAL_HEADS.get(d)
    if heads is None or d % heads:
        raise UserError(f"{source}: d_model {d} is not a released shape; pass --heads (dividing {d})")
    first = indices[0]
    tokens = {
        "qkv": state.get(f"sequential.{first}.attention.query.key_param_tokens", torch.empty(0, d)).shape[0],
        "proj": state.get(f"sequential.{first}.attention.proj.key_param_tokens", torch.empty(0, d)).shape[0],
        "ffn": state.get(f"sequential.{first}.mlp.key_param_tokens", torch.empty(0, d)).shape[0],
    }
    empty = [name for name, count in tokens.items() if count == 0]
    if empty:
        raise UserError(f"{source}: 0 {empty[0]} parameter tokens; not a trained TokenFormer")
    config = TokenformerConfig(
        vocab_size=vocab_size,
        seq_len=seq_len,
        n_layers=n_layers,
        d_model=d,
        n_heads=heads,
        qkv_tokens=tokens["qkv"],
        proj_tokens=tokens["proj"],
        ffn_tokens=tokens["ffn"],
        rotary_pct=rotary_pct,
        norm=norm,
    )
    out = {"embedding.weight": state[embedding_key]}
    used = {embedding_key}
    for block, index in enumerate(indices):
        layers = {f"attention.{p}": tokens["qkv"] for p in ("query", "key", "value")}
        layers |= {"attention.proj": tokens["proj"], "mlp": tokens["ffn"]}
        for official, n in layers.items():
            ours = official.replace("attention.proj", "attention.output").replace("mlp", "ffn")
            for kind in ("key", "value"):
                key = f"sequential.{index}.{official}.{kind}_param_tokens"
                out[f"blocks.{block}.{ours}.{kind}_tokens"] = _shape(state, key, (n, d), source)
                used.add(key)
    final = n_layers + 3
    for kind in ("weight", "bias"):
        key = f"sequential.{final}.norm.{kind}"
        out[f"final_norm.{kind}"] = _shape(state, key, (d,), source)
        used.add(key)
    unknown = sorted(key for key in state if key not in used and not _IGNORED.search(key))
    if unknown:
        raise UserError(
            f"{source}: {len(unknown)} unexpected tensor(s), e.g. {unknown[0]} (not a TokenFormer?)"
        )
    return config, out


def import_official(
    checkpoint: str | Path,
    out: str | Path,
    tokenizer: str | Path | None = None,
    heads: int | None = None,
    seq_len: int = 2048,
    rotary_pct: float = 0.25,
    norm: str = "l2_norm_gelu",
    force: bool = False,
) -> dict:
    """Convert, check against tfctl's model, write a model directory (`out` claimed first, see
    tfctl.outputs: never a folder of the user's, a run, or the checkpoint's own). Returns a summary."""
    out = claim_output(out, MODEL_OUTPUT, force, sources=(Path(checkpoint),))
    config, state = convert_official(
        read_official_state(checkpoint), str(checkpoint), heads, seq_len, rotary_pct, norm
    )
    tokenizer_path = tokenizer_file(tokenizer) if tokenizer is not None else None
    if tokenizer_path is not None:  # GPT-NeoX-20B's tokenizer.json: 50277 ids, padded to 50304, EOS id 0
        vocab = load_tokenizer(tokenizer_path).get_vocab_size()
        if padded_vocab_size(vocab) > config.vocab_size:
            raise UserError(
                f"{tokenizer_path}: {vocab} tokens do not fit the checkpoint's {config.vocab_size}-row embedding"
            )
    model = build_model(config, device="meta")
    model.load_state_dict(state, strict=True, assign=True)  # every tensor has a place, every place a tensor
    for name, tensor in state.items():
        if not bool(tensor.isfinite().all()):
            raise UserError(f"{checkpoint}: {name} holds non-finite values (NaN or inf); not imported")
    save_model_dir(state, config, out, tokenizer=tokenizer_path, extra={"imported_from": str(checkpoint)})
    params = sum(t.numel() for t in state.values())
    return {"checkpoint": str(checkpoint), "out": str(out), "params": params, "config": config.__dict__}
