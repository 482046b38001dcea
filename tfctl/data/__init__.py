"""Data: sources → tokenizer → prepared token files → batches.

`prepare_dataset(DataSettings(...))` makes (or reuses) a directory of token files; `load_prepared` opens it;
`TokenSampler` and `eval_batches` turn its tokens into training and evaluation batches.
"""

from tfctl.data.dataset import PreparedData, load_prepared
from tfctl.data.prepare import prepare_dataset
from tfctl.data.sampler import TokenSampler, eval_batches
from tfctl.data.settings import DataSettings
from tfctl.data.tokenizer import EOS, encode_text_file, load_tokenizer, padded_vocab_size

__all__ = [
    "EOS",
    "DataSettings",
    "PreparedData",
    "TokenSampler",
    "encode_text_file",
    "eval_batches",
    "load_prepared",
    "load_tokenizer",
    "padded_vocab_size",
    "prepare_dataset",
]
