"""`tfctl data prepare|info`: tokenized datasets."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION
from tfctl.data.settings import DEFAULT_SEED

app = typer.Typer(help="Prepare and inspect tokenized datasets.", no_args_is_help=True)

PREPARE_EPILOG = """Examples:

  tfctl data prepare --source shakespeare --tokenizer bpe:8192 -o data/shakespeare

  tfctl data prepare -s shakespeare+sotu -t gpt2                    # into the cache; prints the directory

  tfctl data prepare -s 'corpus/**/*.txt' -t bpe:32768 --val-fraction 0.01 -o data/mine

  tfctl data prepare -s dump.jsonl --text-field body -t path/to/tokenizer.json -o data/dump

  tfctl data prepare -s hf:Skylion007/openwebtext -t gpt2 -o data/owt     # needs pip install 'tfctl\\[hf]'

Running it again with the same source and settings is instant; the directory only ever appears complete.
"""

INFO_EPILOG = """Examples:

  tfctl data info data/shakespeare

  tfctl data info data/shakespeare --json | jq .splits.train.tokens
"""


@app.command(epilog=PREPARE_EPILOG)
def prepare(
    source: list[str] = typer.Option(
        ["shakespeare"],
        "--source",
        "-s",
        help="shakespeare, sotu, a .txt file/dir/glob, x.jsonl/.json/.parquet/.csv, or hf:NAME_OR_DIR; repeat or join with + to combine.",
    ),
    tokenizer: str = typer.Option(
        "bpe:8192",
        "--tokenizer",
        "-t",
        help="bpe:N (train a byte-level BPE), gpt2, or a tokenizer.json path.",
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Dataset directory (default: a directory in the cache)."
    ),
    val_fraction: float = typer.Option(0.05, help="Share of documents held out for validation."),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the train/val document split."),
    text_field: str = typer.Option("text", help="Field holding the text in JSONL records and HF datasets."),
    cache_dir: Path = typer.Option(None, help="Cache root (default: $TFCTL_CACHE or ~/.cache/tfctl/data)."),
) -> None:
    """Tokenize a corpus into train/val token files (cached); prints the dataset directory."""
    from tfctl.data import DataSettings, load_prepared, prepare_dataset

    settings = DataSettings(
        source=source if len(source) > 1 else source[0],
        tokenizer=tokenizer,
        val_fraction=val_fraction,
        seed=seed,
        text_field=text_field,
    )
    path = prepare_dataset(settings, out_dir=output, cache_root=cache_dir)
    splits = load_prepared(path).meta["splits"]
    typer.echo(
        f"train {splits['train']['tokens']:,} tokens, val {splits['val']['tokens']:,} tokens", err=True
    )
    typer.echo(str(path))


@app.command(epilog=INFO_EPILOG)
def info(
    path: Path = typer.Argument(..., help="A prepared dataset directory."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Describe a prepared dataset: source, tokenizer, vocabulary and the size of each split."""
    from rich.console import Console
    from rich.table import Table

    from tfctl.data import load_prepared

    data = load_prepared(path)
    meta = data.meta
    if json_output:
        print(json.dumps({"path": str(data.path), **meta}, indent=2))
        return
    console = Console(highlight=False)
    console.print(f"[bold]{data.path}[/bold]")
    console.print(f"source     {meta['source']}  (fingerprint {meta['source_fingerprint'][:12]})")
    console.print(f"tokenizer  {meta['tokenizer']['spec']}")
    console.print(
        f"vocab      {meta['vocab_size']:,} (padded {meta['padded_vocab_size']:,}), eos id {meta['eos_id']}"
    )
    console.print(f"dtype      {meta['dtype']}, created {meta['created']}")
    table = Table("split", "documents", "tokens", "bytes", "bytes/token")
    for split, stats in meta["splits"].items():
        ratio = f"{stats['bytes'] / stats['tokens']:.2f}" if stats["tokens"] else "—"
        table.add_row(split, f"{stats['documents']:,}", f"{stats['tokens']:,}", f"{stats['bytes']:,}", ratio)
    console.print(table)
