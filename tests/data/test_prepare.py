import json

import numpy as np
import pytest

from tfctl.data import DataSettings, load_prepared, load_tokenizer, prepare_dataset
from tfctl.data.prepare import split_documents, val_documents
from tfctl.data.sources import resolve_sources
from tfctl.data.tokenizer import TextEncoder


def test_shakespeare_meta_matches_token_files(shakespeare):
    meta = shakespeare.meta
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 512 and shakespeare.vocab_size == 512
    assert meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"] == 42
    assert meta["splits"]["val"]["documents"] == 2  # round(42 * 0.05)
    for split in ("train", "val"):
        tokens = shakespeare.tokens(split)
        assert len(tokens) == meta["splits"][split]["tokens"]
        assert (shakespeare.path / f"{split}.bin").stat().st_size == 2 * len(tokens)
        # one EOS closes every document, and nothing else decodes to it
        assert np.count_nonzero(tokens == shakespeare.eos_id) == meta["splits"][split]["documents"]
        assert tokens[-1] == shakespeare.eos_id
    assert (shakespeare.path / "tokenizer.json").is_file()


def test_shakespeare_tokens_decode_to_the_text(shakespeare, shakespeare_settings):
    tokenizer = shakespeare.tokenizer()
    sample = "To be, or not to be, that is the question:\n  Whether 'tis nobler — café ☃ 1623\n"
    assert tokenizer.decode(tokenizer.encode(sample).ids) == sample
    # the first training document, read back from train.bin, is the first non-held-out play
    tokens = shakespeare.tokens("train")
    first_eos = int(np.argmax(tokens == shakespeare.eos_id))
    sources = resolve_sources("shakespeare")
    text = next(
        text for split, text in split_documents(sources, 42, shakespeare_settings) if split == "train"
    )
    assert tokenizer.decode(tokens[:first_eos].tolist()) == text


def test_second_prepare_reuses_the_cache(shakespeare, shakespeare_settings, cache_root):
    before = (shakespeare.path / "meta.json").stat().st_mtime_ns
    again = prepare_dataset(shakespeare_settings, cache_root=cache_root, progress=False)
    assert again == shakespeare.path and (again / "meta.json").stat().st_mtime_ns == before


def test_trained_tokenizer_is_cached_across_output_dirs(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("the cat sat on the mat\n" * 200)
    settings = DataSettings(source=str(tmp_path / "a.txt"), tokenizer="bpe:300")
    first = prepare_dataset(settings, out_dir=tmp_path / "one", cache_root=tmp_path / "cache", progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("the BPE was trained again")

    monkeypatch.setattr("tfctl.data.prepare.train_bpe", no_training)
    second = prepare_dataset(
        settings, out_dir=tmp_path / "two", cache_root=tmp_path / "cache", progress=False
    )
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    assert (first / "train.bin").read_bytes() == (second / "train.bin").read_bytes()
    assert len(list((tmp_path / "cache" / "tokenizers").iterdir())) == 1


def test_val_split_is_seeded_and_by_document():
    assert val_documents(100, 0.1, seed=1) == val_documents(100, 0.1, seed=1)
    assert val_documents(100, 0.1, seed=1) != val_documents(100, 0.1, seed=2)
    assert len(val_documents(100, 0.1, seed=1)) == 10
    assert len(val_documents(3, 0.01, seed=1)) == 1 and val_documents(3, 0.0, seed=1) == set()


def test_a_single_file_gives_its_tail_to_val(tmp_path, cache_root):
    text = "".join(f"line {i} of the only document\n" for i in range(200))
    (tmp_path / "one.txt").write_text(text)
    settings = DataSettings(source=str(tmp_path / "one.txt"), tokenizer="gpt2", val_fraction=0.1)
    data = load_prepared(
        prepare_dataset(settings, out_dir=tmp_path / "out", cache_root=cache_root, progress=False)
    )
    tokenizer = data.tokenizer()
    train, val = (
        tokenizer.decode(data.tokens(s).tolist(), skip_special_tokens=True) for s in ("train", "val")
    )
    assert train + val == text and val.startswith("line 180 ") and val.endswith("\n")


def test_jsonl_and_text_dir_sources_with_gpt2(tmp_path, cache_root):
    records = [{"text": f"Document number {i}. Hello world!", "id": i} for i in range(20)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("Hello world")
    settings = DataSettings(source=[str(tmp_path / "docs.jsonl"), str(tmp_path / "txt")], tokenizer="gpt2")
    data = load_prepared(
        prepare_dataset(settings, out_dir=tmp_path / "out", cache_root=cache_root, progress=False)
    )
    assert data.meta["padded_vocab_size"] == data.vocab_size == 50304 and data.eos_id == 50256
    splits = data.meta["splits"]
    assert splits["train"]["documents"] + splits["val"]["documents"] == 21 and splits["val"]["documents"] == 1
    train = data.tokens("train")
    assert train.dtype == np.uint16 and train[-3:].tolist() == [15496, 995, 50256]  # "Hello world" closes it


def test_cutting_long_documents_changes_no_token():
    tokenizer = load_tokenizer("gpt2")
    text = next(resolve_sources("shakespeare")[0].documents())[:200_000] + "  \n\n  trailing   spaces \n"
    assert np.array_equal(TextEncoder(tokenizer).encode([text])[0], tokenizer.encode(text).ids)


def test_settings_changes_name_another_dataset(tmp_path, cache_root):
    (tmp_path / "a.txt").write_text("some text\n" * 50)
    (tmp_path / "b.txt").write_text("more text\n" * 50)
    glob = str(tmp_path / "*.txt")
    first = prepare_dataset(
        DataSettings(source=glob, tokenizer="gpt2"), cache_root=cache_root, progress=False
    )
    other = prepare_dataset(
        DataSettings(source=glob, tokenizer="gpt2", seed=1), cache_root=cache_root, progress=False
    )
    assert first != other and first.parent == other.parent == cache_root
    (tmp_path / "b.txt").write_text("changed text\n" * 50)
    changed = prepare_dataset(
        DataSettings(source=glob, tokenizer="gpt2"), cache_root=cache_root, progress=False
    )
    assert changed != first


@pytest.mark.parametrize("vocab, dtype", [(50257, "uint16"), (65536, "uint16"), (65537, "uint32")])
def test_token_dtype(vocab, dtype):
    from tfctl.data.tokenizer import token_dtype

    assert token_dtype(vocab).name == dtype
