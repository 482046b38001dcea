"""`tfctl export MODEL|RUN --hf DIR`: a model directory as a Hugging Face trust-remote-code package.

    config.json                  model_type, architectures, auto_map + the shape (HF names)
    configuration_tokenformer.py the config class      } copied from tfctl/interop/hf_remote/:
    modeling_tokenformer.py      the model (torch only) } no tfctl needed to load the package
    model.safetensors            tfctl's weights unchanged (the output head is tied: stored once)
    tokenizer.json, tokenizer_config.json, generation_config.json
    README.md                    a model card: the run's recipe, its stages, the final perplexity

Loading: AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True).
"""

import json
import shutil
from pathlib import Path

from tfctl.data.tokenizer import EOS
from tfctl.errors import UserError
from tfctl.model.config import TokenformerConfig
from tfctl.model.sizes import count_params, format_count
from tfctl.model_dir.config import CONFIG, TOKENIZER, WEIGHTS, load_model_config
from tfctl.model_dir.weights import check_finite, map_state_dict
from tfctl.outputs import OutputKind, claim_output, output_writer

REMOTE = Path(__file__).parent / "hf_remote"
REMOTE_FILES = ("configuration_tokenformer.py", "modeling_tokenformer.py")


def hf_config(config, eos_id: int) -> dict:
    """tfctl's config in the names transformers' utilities expect (hidden_size, num_hidden_layers, ...)."""
    values = {
        "model_type": "tokenformer",
        "architectures": ["TokenformerForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_tokenformer.TokenformerConfig",
            "AutoModelForCausalLM": "modeling_tokenformer.TokenformerForCausalLM",
        },
        "family": config.family,
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "max_position_embeddings": config.seq_len,
        "rotary_pct": config.rotary_pct,
        "rotary_emb_base": 10000.0,
        "layer_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "dtype": "float32",
    }
    if isinstance(config, TokenformerConfig):
        values.update(
            qkv_tokens=config.qkv_tokens,
            proj_tokens=config.proj_tokens,
            ffn_tokens=config.ffn_tokens,
            pattention_norm=config.norm,
            qkv_scale=config.scale("qkv"),
            proj_scale=config.scale("proj"),
            ffn_scale=config.scale("ffn"),
        )
    else:
        values["intermediate_size"] = config.ffn_hidden
    return values


def model_card(model_dir: Path, config, run: dict | None) -> str:
    """README.md of the package; `run` is what the run the model came from says (tfctl.run.targets.run_summary)."""
    kind = "Tokenformer" if isinstance(config, TokenformerConfig) else "Transformer (baseline)"
    lines = [
        f"# {run['name'] if run else model_dir.name}",
        "",
        f"A {format_count(count_params(config))}-parameter {kind} trained with tfctl "
        f"({config.n_layers} layers, d_model {config.d_model}, {config.n_heads} heads, context {config.seq_len}).",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'model = AutoModelForCausalLM.from_pretrained("DIR", trust_remote_code=True)',
        'tokenizer = AutoTokenizer.from_pretrained("DIR", trust_remote_code=True)',
        "```",
        "",
    ]
    export = model_dir / "export.json"
    info = json.loads(export.read_text()) if export.is_file() else {}
    if run is not None:
        lines += [
            "## Stages",
            "",
            "| stage | status | params | tokens (cumulative) | val loss | val ppl |",
            "|---|---|---|---|---|---|",
        ]
        final_ppl = None
        for name, entry in run["stages"].items():
            result = entry.get("result") or {}
            if name in run["finished"] and result:
                final_ppl = result.get("val_ppl")
            cells = [result.get(k) for k in ("params", "tokens", "val_loss", "val_ppl")]
            cells = ["—" if c is None else (f"{c:,}" if isinstance(c, int) else f"{c:.4f}") for c in cells]
            lines.append(f"| {name} | {entry.get('status')} | " + " | ".join(cells) + " |")
        lines += ["", f"Final validation perplexity: {final_ppl:.2f}" if final_ppl else "", ""]
        if run["recipe"] is not None:
            lines += ["## Recipe", "", "```yaml", run["recipe"].rstrip(), "```", ""]
    elif info.get("val_ppl") is not None:
        lines += [f"Final validation perplexity: {info['val_ppl']:.2f} (stage {info.get('stage')})", ""]
    lines += ["## Config", "", "```json", json.dumps(hf_config(config, 0), indent=2), "```", ""]
    return "\n".join(lines)


def is_hf_export(path: Path) -> bool:
    """An earlier `tfctl export --hf` package: its config.json names the remote Tokenformer code."""
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(config, dict)
        and config.get("model_type") == "tokenformer"
        and "auto_map" in config
        and all((path / name).is_file() for name in REMOTE_FILES)
    )


HF_FILES = (
    CONFIG,
    *REMOTE_FILES,
    WEIGHTS,
    TOKENIZER,
    "tokenizer_config.json",
    "generation_config.json",
    "README.md",
)
HF_OUTPUT = OutputKind("Hugging Face export", HF_FILES, is_hf_export)


def export_hf(
    model_dir: str | Path,
    out: str | Path,
    run: dict | None = None,
    force: bool = False,
    sources: tuple[Path, ...] = (),
) -> Path:
    """Write the package of a model directory to `out` (complete or absent; an existing `out` only if it is an
    earlier export, or with `force` a folder of the user's, see tfctl.outputs). Returns `out`. `run`: what the
    model card says of the run it came from (tfctl.run.targets.run_summary), or None; `sources`: what else
    the command read (the run directory it was given), never written into."""
    from tokenizers import Tokenizer

    model_dir = Path(model_dir)
    config = load_model_config(model_dir)
    out = claim_output(out, HF_OUTPUT, force, sources=(*map(Path, sources), model_dir))
    if not (model_dir / TOKENIZER).is_file():
        raise UserError(f"{model_dir}: has no {TOKENIZER}; an HF export needs the model's tokenizer")
    try:
        eos_id = Tokenizer.from_file(str(model_dir / TOKENIZER)).token_to_id(EOS)
    except Exception as error:  # the tokenizers library raises plain Exceptions for a malformed file
        raise UserError(f"{model_dir / TOKENIZER}: not a readable tokenizer ({str(error)[:120]})") from None
    if eos_id is None:
        raise UserError(f"{model_dir / TOKENIZER}: has no {EOS} token")
    check_finite(map_state_dict(model_dir), model_dir)  # a truncated or NaN model is not shipped
    with output_writer(out, HF_OUTPUT) as tmp:
        shutil.copyfile(model_dir / WEIGHTS, tmp / WEIGHTS)
        shutil.copyfile(model_dir / TOKENIZER, tmp / TOKENIZER)
        for name in REMOTE_FILES:
            shutil.copyfile(REMOTE / name, tmp / name)
        (tmp / CONFIG).write_text(json.dumps(hf_config(config, eos_id), indent=2) + "\n")
        special = {"bos_token": EOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
        tokenizer_config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": config.seq_len,
            "clean_up_tokenization_spaces": False,
            **special,
        }
        (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
        generation = {
            "bos_token_id": eos_id,
            "eos_token_id": eos_id,
            "pad_token_id": eos_id,
            "use_cache": True,
        }
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        (tmp / "README.md").write_text(model_card(model_dir, config, run))
    return out
