"""Growth as a streaming copy: the file it writes, the checks it runs on what it wrote, the time split."""

import dataclasses
import importlib

import pytest
import torch
from safetensors.torch import load_file, save_file

from tfctl.errors import UserError
from tfctl.growth import grow, grow_model_dir
from tfctl.growth.state_dict import plan_growth
from tfctl.growth.verify import check_grown_tensors, model_from_state, streamed_model
from tfctl.model_dir.safetensors_io import TensorReader, map_tensors, write_tensors
from tfctl.model_dir.weights import save_model_dir


def test_written_file_is_safetensors_and_maps_back(tmp_path):
    tensors = {
        "a": torch.randn(5, 3),
        "b": torch.arange(7, dtype=torch.int64),
        "c": torch.randn(4, 2).to(torch.bfloat16),
        "d": torch.randn(0, 3),
    }
    layout = {name: (t.dtype, tuple(t.shape)) for name, t in tensors.items()}
    pieces = [(name, [t[:2], t[2:]]) for name, t in tensors.items()]  # each tensor in two row blocks
    write_tensors(tmp_path / "w.safetensors", layout, pieces, metadata={"format": "pt"})
    for loaded in (load_file(tmp_path / "w.safetensors"), map_tensors(tmp_path / "w.safetensors")):
        assert list(loaded) == list(tensors) or set(loaded) == set(tensors)
        for name, tensor in tensors.items():
            assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    save_file({"x": torch.randn(3, 3)}, tmp_path / "theirs.safetensors")  # and it maps their files
    assert torch.equal(
        map_tensors(tmp_path / "theirs.safetensors")["x"], load_file(tmp_path / "theirs.safetensors")["x"]
    )


def test_writer_refuses_what_does_not_match_the_layout(tmp_path):
    layout = {"a": (torch.float32, (2, 2)), "b": (torch.float32, (1,))}
    with pytest.raises(ValueError, match="'b' produced where the layout has 'a'"):
        write_tensors(tmp_path / "w", layout, [("b", [torch.zeros(1)])])
    with pytest.raises(ValueError, match="3 elements written"):
        write_tensors(tmp_path / "w", layout, [("a", [torch.zeros(3)])])
    with pytest.raises(ValueError, match="no data for"):
        write_tensors(tmp_path / "w", layout, [("a", [torch.zeros(2, 2)])])


@pytest.mark.parametrize("init", ["preserve", "paper"])
def test_grown_file_equals_grow_bit_for_bit_and_reports_the_split(model_dir, trained, tmp_path, init):
    config, state, _ = trained
    out = tmp_path / "grown"
    report = grow_model_dir(model_dir, out, "qkv=24,proj=24,ffn=96", layers=3, init=init, seed=5)
    target = dataclasses.replace(config, qkv_tokens=24, proj_tokens=24, ffn_tokens=96, n_layers=3)
    _, want = grow(config, state, target, init=init, seed=5)
    written = load_file(out / "model.safetensors")
    assert list(written) == list(want)
    for name, tensor in want.items():
        assert torch.equal(written[name], tensor), name
    parts = (report.read_seconds, report.grow_seconds, report.write_seconds, report.verify_seconds)
    assert all(part >= 0 for part in parts) and report.seconds >= sum(parts) * 0.99
    old_bytes = sum(t.nbytes for t in state.values())
    assert report.checked_bytes >= old_bytes  # every old tensor compared (and, for preserve, the new keys)


def test_algebra_check_catches_a_changed_old_row_and_a_non_zero_new_key(trained):
    config, state, _ = trained
    target = dataclasses.replace(config, qkv_tokens=24, proj_tokens=24, ffn_tokens=96)
    new_config, sources = plan_growth(config, state, target, "preserve")
    _, grown = grow(config, state, target, "preserve")
    assert check_grown_tensors(config, state, new_config, grown, sources, "preserve") > 0
    moved = {**grown, "blocks.1.ffn.value_tokens": grown["blocks.1.ffn.value_tokens"].clone()}
    moved["blocks.1.ffn.value_tokens"][3, 0] += 1e-7
    with pytest.raises(RuntimeError, match="blocks.1.ffn.value_tokens does not start with"):
        check_grown_tensors(config, state, new_config, moved, sources, "preserve")
    keyed = {**grown, "blocks.0.attention.key.key_tokens": grown["blocks.0.attention.key.key_tokens"].clone()}
    keyed["blocks.0.attention.key.key_tokens"][20, 1] = 0.5
    with pytest.raises(RuntimeError, match="new key tokens of blocks.0.attention.key.key_tokens"):
        check_grown_tensors(config, state, new_config, keyed, sources, "preserve")
    tau_moved = dataclasses.replace(new_config, ffn_scale=new_config.ffn_scale * 2)
    with pytest.raises(RuntimeError, match="τ of the ffn layers"):
        check_grown_tensors(config, state, tau_moved, grown, sources, "preserve")


@pytest.mark.parametrize("following", [True, False])
def test_a_refused_growth_leaves_nothing(model_dir, tmp_path, monkeypatch, following):
    """A failing check (during or after the writing): no output directory, no temporary one."""
    module = importlib.import_module("tfctl.growth.grow_model_dir")  # the module, not the function

    def broken(*args, **kwargs):
        raise RuntimeError("growth bug: simulated")

    monkeypatch.setattr(module, "verify_written_growth", broken)
    monkeypatch.setattr(module, "VERIFY_FOLLOWING", following)
    with pytest.raises(RuntimeError, match="simulated"):
        grow_model_dir(model_dir, tmp_path / "grown", "qkv=24,proj=24,ffn=96")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tiny", "tokenizer.json"])


def test_streamed_model_equals_the_model_in_memory(model_dir, trained):
    """One block's weights resident at a time, the same logits as the whole model; every tensor seen once."""
    config, state, _ = trained
    probe = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    seen = []
    with TensorReader(model_dir / "model.safetensors") as reader, torch.no_grad():
        streamed = streamed_model(config, reader, lambda tensors: seen.extend(tensors))(probe)[0]
    assert sorted(seen) == sorted(state)
    with torch.no_grad():
        torch.testing.assert_close(streamed, model_from_state(config, state)(probe)[0], rtol=0, atol=0)


def test_a_model_with_non_finite_loss_is_refused_before_anything_is_written(trained, tmp_path):
    config, state, _ = trained
    broken = {**state, "final_norm.weight": torch.full_like(state["final_norm.weight"], float("nan"))}
    source = save_model_dir(broken, config, tmp_path / "nan")
    with pytest.raises(UserError, match="non-finite values"):  # refused when the source is read
        grow_model_dir(source, tmp_path / "grown", "qkv=24,proj=24,ffn=96")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan"]


FAST_PATHS = ("BACKGROUND_WRITE", "VERIFY_FOLLOWING", "DIRECT_IO", "SPARSE")


@pytest.mark.parametrize("init", ["preserve", "paper"])
def test_grown_file_has_the_same_bytes_with_every_fast_path_or_none(model_dir, tmp_path, monkeypatch, init):
    """The writer thread, the checks that follow it, O_DIRECT and the holes each change how the file is
    written, never what it holds: the sha256 with all of them, with each one off, and with none."""
    import hashlib

    grow_module = importlib.import_module("tfctl.growth.grow_model_dir")  # the module, not the function
    to = "qkv=24,proj=24,ffn=2112"  # new FFN keys of 64 KiB and more: holes under preserve
    digests = {}
    for off in ("none", *FAST_PATHS, "all"):
        for flag in FAST_PATHS:
            monkeypatch.setattr(grow_module, flag, off not in (flag, "all"))
        out = tmp_path / f"grown-{off}"
        grow_model_dir(model_dir, out, to, layers=3, init=init, seed=5)
        digests[off] = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert len(set(digests.values())) == 1, digests


def test_background_writer_writes_blocks_in_order_and_reports_a_failed_write(tmp_path):
    tensors = {"a": torch.randn(64, 8), "b": torch.randn(3), "c": torch.randn(128, 4)}
    layout = {name: (t.dtype, tuple(t.shape)) for name, t in tensors.items()}
    pieces = [(name, [t[: len(t) // 2], t[len(t) // 2 :]]) for name, t in tensors.items()]
    write_tensors(tmp_path / "fg", layout, pieces)
    write_tensors(tmp_path / "bg", layout, pieces, background=True)
    assert (tmp_path / "fg").read_bytes() == (tmp_path / "bg").read_bytes()
    with pytest.raises(ValueError, match="3 elements written"):
        write_tensors(
            tmp_path / "w", {"a": (torch.float32, (2, 2))}, [("a", [torch.zeros(3)])], background=True
        )


def _faulty_writer(monkeypatch, corrupt_call: int) -> list:
    """Make the writer put a wrong byte in the file: the `corrupt_call`-th block handed to it (1: the header)
    gets its first byte flipped on its way to the file (0: none; the producer's tensors are left as they
    were), whether it is written straight (`_write_all`) or staged for O_DIRECT (`StagedWriter.append`).
    Returns the list the blocks are counted in."""
    io_module = importlib.import_module("tfctl.model_dir.safetensors_io")
    calls = []

    def corrupted(data):
        calls.append(1)
        if len(calls) != corrupt_call:
            return data
        data = bytearray(bytes(_as_bytes(data)))
        data[0] ^= 0x40
        return torch.frombuffer(data, dtype=torch.uint8)

    write_all, append = io_module._write_all, io_module.StagedWriter.append
    monkeypatch.setattr(io_module, "_write_all", lambda fd, data: write_all(fd, corrupted(data)))
    monkeypatch.setattr(io_module.StagedWriter, "append", lambda self, data: append(self, corrupted(data)))
    return calls


def _as_bytes(data):
    return data.contiguous().view(-1).view(torch.uint8).numpy() if isinstance(data, torch.Tensor) else data


@pytest.mark.parametrize(
    ("following", "direct"), [(True, True), (False, True), (True, False), (False, False)]
)
@pytest.mark.parametrize(
    ("corrupt_call", "message"),
    [
        (2, "embedding.weight does not start with"),  # the first tensor
        (3, "blocks.0.attention.query.key_tokens does not start with"),  # its old rows
        (4, "new key tokens of blocks.0.attention.query.key_tokens"),  # its new rows (zero)
        (-1, "final_norm.bias does not start with"),  # the last block of the file
    ],
)
def test_a_wrong_byte_in_the_written_file_is_refused(
    model_dir, tmp_path, monkeypatch, following, direct, corrupt_call, message
):
    """The checks read the file, not the producer's tensors: a writer that puts one wrong byte in the file
    (whatever the tensors in memory hold) fails the growth, and nothing is left at `out`."""
    grow_module = importlib.import_module("tfctl.growth.grow_model_dir")
    monkeypatch.setattr(grow_module, "VERIFY_FOLLOWING", following)
    monkeypatch.setattr(grow_module, "DIRECT_IO", direct)
    if corrupt_call == -1:  # count the blocks of a clean growth first
        with monkeypatch.context() as clean:
            calls = _faulty_writer(clean, 0)
            grow_model_dir(model_dir, tmp_path / "clean", "qkv=24,proj=24,ffn=96", init="preserve")
            corrupt_call = len(calls)
    _faulty_writer(monkeypatch, corrupt_call)
    with pytest.raises(RuntimeError, match=message):  # preserve: its new key rows are known (zero)
        grow_model_dir(model_dir, tmp_path / "grown", "qkv=24,proj=24,ffn=96", init="preserve")
    expected = {"tiny", "tokenizer.json"} | ({"clean"} if (tmp_path / "clean").exists() else set())
    assert {p.name for p in tmp_path.iterdir()} == expected  # no `grown`, no temporary sibling


@pytest.mark.parametrize("init", ["preserve", "paper"])
def test_checks_that_follow_the_writer_equal_the_checks_after_it(model_dir, tmp_path, monkeypatch, init):
    """Same file (sha256), same report (logits, losses, bytes compared) with the checks run while the file is
    written (VERIFY_FOLLOWING) as after it."""
    import hashlib

    grow_module = importlib.import_module("tfctl.growth.grow_model_dir")
    results = {}
    for following in (True, False):
        monkeypatch.setattr(grow_module, "VERIFY_FOLLOWING", following)
        out = tmp_path / f"grown-{following}"
        report = grow_model_dir(model_dir, out, "qkv=24,proj=24,ffn=96", layers=4, init=init, seed=3)
        digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
        numbers = (report.max_abs_logit_diff, report.loss_before, report.loss_after, report.checked_bytes)
        results[following] = (digest, numbers)
    assert results[True] == results[False]


def test_a_reader_follows_the_writer_and_stops_when_the_writing_fails(tmp_path):
    import threading

    from tfctl.model_dir.safetensors_io import WrittenBytes

    tensors = {"a": torch.randn(64, 8), "b": torch.randn(3), "c": torch.randn(128, 4)}
    layout = {name: (t.dtype, tuple(t.shape)) for name, t in tensors.items()}
    produced = threading.Event()

    def pieces(fail: bool):
        for name, tensor in tensors.items():
            yield name, [tensor[:1], tensor[1:]]
            if name == "a":
                produced.wait(timeout=60)  # "b" is produced only once the reader has read "a"
                if fail:
                    raise OSError(28, "No space left on device")

    for fail in (False, True):
        produced.clear()
        written = WrittenBytes()
        path = tmp_path / f"w-{fail}"
        results = {}

        def follow(path, written, results):
            try:
                with TensorReader(path, written) as reader:
                    for name in reader.names():
                        results[name] = reader.read_into(name, reader.empty(name))
                        produced.set()
            except RuntimeError as error:
                results["error"] = error

        thread = threading.Thread(target=follow, args=(path, written, results))
        thread.start()
        if fail:
            with pytest.raises(OSError, match="No space"):
                write_tensors(path, layout, pieces(fail), background=True, written=written)
        else:
            write_tensors(path, layout, pieces(fail), background=True, written=written)
        thread.join(timeout=60)
        assert not thread.is_alive()
        if fail:
            assert list(results) == ["a", "error"] and "writing failed" in str(results["error"])
        else:
            assert all(torch.equal(results[name], tensor) for name, tensor in tensors.items())


def test_new_key_tokens_are_holes_of_the_same_file(model_dir, tmp_path, monkeypatch):
    """`preserve`'s zero key tokens are left as holes where they cover whole HOLE blocks: the same bytes (and
    checks) as a file written in full, less space on the disk; a byte put in a hole is still caught."""
    import os

    from tfctl.model_dir.direct_io import HOLE

    grow_module = importlib.import_module("tfctl.growth.grow_model_dir")
    to = "qkv=16,proj=16,ffn=2112"  # 2048 new FFN key tokens of 32 floats per layer: 4 HOLE blocks each
    files = {}
    for sparse in (True, False):
        monkeypatch.setattr(grow_module, "SPARSE", sparse)
        out = tmp_path / f"grown-{sparse}"
        grow_model_dir(model_dir, out, to, init="preserve")  # preserve: new key tokens are zero
        files[sparse] = out / "model.safetensors"
    assert files[True].read_bytes() == files[False].read_bytes()
    on_disk = {sparse: os.stat(path).st_blocks * 512 for sparse, path in files.items()}
    assert on_disk[True] <= on_disk[False] - 2 * 3 * HOLE  # two layers, at least 3 whole blocks each
    monkeypatch.setattr(grow_module, "SPARSE", True)
    # blocks handed to the writer: header, embedding, blocks.0's 8 attention tensors (not grown), then the
    # FFN's key tokens: old rows (11), new rows (12, zero)
    _faulty_writer(monkeypatch, 12)
    with pytest.raises(RuntimeError, match="new key tokens of blocks.0.ffn.key_tokens are not zero"):
        grow_model_dir(model_dir, tmp_path / "grown", to, init="preserve")
    assert not (tmp_path / "grown").exists()
