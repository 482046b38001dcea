import numpy as np

from tfctl.data import encode_text_file, load_tokenizer, padded_vocab_size


def test_gpt2_known_ids():
    tokenizer = load_tokenizer("gpt2")
    assert tokenizer.encode("Hello world").ids == [15496, 995]
    assert tokenizer.encode("The quick brown fox jumps over the lazy dog.").ids == [
        464,
        2068,
        7586,
        21831,
        18045,
        625,
        262,
        16931,
        3290,
        13,
    ]
    assert tokenizer.token_to_id("<|endoftext|>") == 50256
    assert tokenizer.get_vocab_size() == 50257 and padded_vocab_size(50257) == 50304


def test_padded_vocab_size():
    assert [padded_vocab_size(n) for n in (1, 64, 65, 8192, 8193)] == [64, 64, 128, 8192, 8256]
    assert padded_vocab_size(100, multiple=128) == 128


def test_load_tokenizer_from_a_directory_and_encode_a_file(shakespeare, tmp_path):
    tokenizer = load_tokenizer(shakespeare.path)  # a prepared dataset (or an exported model) directory
    (tmp_path / "eval.txt").write_text("Now is the winter of our discontent\n")
    ids = encode_text_file(tokenizer, tmp_path / "eval.txt")
    assert (
        ids.dtype == np.uint16 and tokenizer.decode(ids.tolist()) == "Now is the winter of our discontent\n"
    )
    assert shakespeare.eos_id not in ids.tolist()


def test_a_tokenizer_without_eos_gets_one(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    plain = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    plain.save(str(tmp_path / "tokenizer.json"))
    tokenizer = load_tokenizer(tmp_path / "tokenizer.json")
    assert tokenizer.token_to_id("<|endoftext|>") == 2 and tokenizer.encode("hello").ids == [1]
