"""`tfctl import CHECKPOINT -o DIR`: an official TokenFormer checkpoint as a tfctl model directory."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION

EPILOG = """Examples:

  tfctl import TokenFormer-150M/pytorch_model.bin -o models/tf-150m --tokenizer 20B_tokenizer.json

  tfctl import 354M_TokenFormer_Openwebtext2/checkpoints -o models/tf-354m --seq-len 1024 --tokenizer 20B_tokenizer.json

Then `tfctl eval models/tf-150m --tasks ...`, `tfctl grow models/tf-150m --to ...`, or a recipe stage
`from: models/tf-150m`. Files are read with torch.load(weights_only=True); nothing is downloaded.
"""


def import_checkpoint(
    checkpoint: Path = typer.Argument(
        ..., help="pytorch_model.bin (Pile models) or a DeepSpeed checkpoint directory (OpenWebText2 354M)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The model directory to write."),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", help="tokenizer.json to ship with the model (the official one: GPT-NeoX-20B's)."
    ),
    heads: int = typer.Option(
        None, "--heads", min=1, help="Attention heads (default: the released shapes')."
    ),
    seq_len: int = typer.Option(
        2048, "--seq-len", min=1, help="Context length (Pile models 2048, OWT2 1024)."
    ),
    rotary_pct: float = typer.Option(
        0.25, "--rotary-pct", min=0.0, max=1.0, help="Rotary fraction of head dims."
    ),
    norm: str = typer.Option(
        "l2_norm_gelu", "--norm", help="Pattention Θ: l2_norm_gelu | gelu_l2_norm | softmax."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Add the model's files to an existing folder that is not a model directory "
        "(nothing else in it is touched; a file of a model directory's names already there is still refused).",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Import an official TokenFormer checkpoint (local file or directory) into a tfctl model directory."""
    from tfctl.errors import UserError
    from tfctl.interop.official import import_official

    if norm not in ("l2_norm_gelu", "gelu_l2_norm", "softmax"):
        raise UserError(f"--norm {norm}: expected l2_norm_gelu, gelu_l2_norm or softmax")
    summary = import_official(checkpoint, out, tokenizer, heads, seq_len, rotary_pct, norm, force)
    if json_output:
        print(json.dumps(summary))
        return
    c = summary["config"]
    typer.echo(
        f"imported {checkpoint} → {out}: {summary['params']:,} params, {c['n_layers']} layers, "
        f"d_model {c['d_model']}, {c['n_heads']} heads, tokens qkv/proj/ffn "
        f"{c['qkv_tokens']}/{c['proj_tokens']}/{c['ffn_tokens']}, vocab {c['vocab_size']}"
    )
