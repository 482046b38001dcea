"""What a prepared dataset is made from: the settings that, with the source fingerprint, name it in the cache."""

from dataclasses import dataclass

from tfctl.errors import DataError

# The recipe's `seed` default (tfctl/recipe/schema.py reads it from here: data sits below the recipe), so that
# `tfctl data` with no --seed prepares the split a recipe without `seed:` trains on.
DEFAULT_SEED = 1337


@dataclass
class DataSettings:
    source: str | list[str] = "shakespeare"
    """'shakespeare', 'sotu', a path/glob/directory of .txt, 'x.jsonl', 'hf:NAME_OR_DIR'; a list or 'a+b' combines."""
    tokenizer: str = "bpe:8192"
    """'bpe:N' (train a byte-level BPE of N tokens), 'gpt2', or a path to a tokenizer.json."""
    val_fraction: float = 0.05
    """Share of documents held out for validation (chosen by `seed`)."""
    seed: int = DEFAULT_SEED
    """Seed of the train/val document split."""
    text_field: str = "text"
    """Field holding the text in JSONL records and Hugging Face datasets."""

    def __post_init__(self):
        if not 0.0 <= self.val_fraction < 1.0:
            raise DataError(f"val_fraction: must be in [0, 1), got {self.val_fraction}")
        if not self.source:
            raise DataError("source: empty")
