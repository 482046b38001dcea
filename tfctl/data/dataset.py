"""A prepared dataset directory, opened for training and evaluation."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfctl.data.prepare import SPLITS
from tfctl.errors import DataError


@dataclass
class PreparedData:
    path: Path
    meta: dict
    vocab_size: int
    """The model's embedding size: the tokenizer's vocabulary padded to a multiple of 64."""
    eos_id: int

    def tokens(self, split: str) -> np.memmap:
        """The split's token ids, memory-mapped (nothing is read until indexed)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        dtype = np.dtype(self.meta["dtype"])
        if self.meta["splits"][split]["tokens"] == 0:
            return np.zeros(0, dtype=dtype)  # numpy cannot map an empty file
        return np.memmap(self.path / f"{split}.bin", dtype=dtype, mode="r")

    def tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.path / "tokenizer.json"))


def load_prepared(path: str | Path) -> PreparedData:
    """Open a directory written by `prepare_dataset`, checking its token files are whole."""
    path = Path(path).expanduser()
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise DataError(f"{path}: not a prepared dataset (no meta.json); run `tfctl data prepare`")
    try:
        meta = json.loads(meta_path.read_text())
        dtype = np.dtype(meta["dtype"])
        for split in SPLITS:
            expected = meta["splits"][split]["tokens"] * dtype.itemsize
            actual = (path / f"{split}.bin").stat().st_size
            if actual != expected:
                raise DataError(
                    f"{path / f'{split}.bin'}: {actual} bytes, meta.json says {expected}; prepare again"
                )
        if not (path / "tokenizer.json").is_file():
            raise DataError(f"{path / 'tokenizer.json'}: missing; prepare again")
        return PreparedData(path, meta, vocab_size=meta["padded_vocab_size"], eos_id=meta["eos_id"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:  # damaged in any way
        raise DataError(
            f"{path}: damaged prepared dataset ({type(error).__name__}: {error}); prepare again"
        ) from None
