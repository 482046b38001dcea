"""Direct I/O: the staged writer writes exactly the bytes it is given (sizes need not be aligned), the reader
reads any range back; where O_DIRECT does not take a transfer, both go through the page cache instead."""

import os

import pytest
import torch

from tfctl.model_dir.direct_io import ALIGN, HOLE, DirectReader, StagedWriter, open_file


def pieces(generator: torch.Generator) -> list[torch.Tensor]:
    """Odd-sized pieces: a few bytes, a run of zeros, more than a chunk, one byte."""
    sizes = [3, 5000, 70_001, 3 * ALIGN, 1]
    random = [torch.randint(0, 256, (n,), dtype=torch.uint8, generator=generator) for n in sizes]
    zeros = torch.zeros(5 * HOLE + 123, dtype=torch.uint8)
    return [random[0], random[1], zeros, random[2], random[3], random[4], zeros]  # it ends in zeros too


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("chunk", [4 * HOLE, 3 * 1000])  # 3000 bytes: a size O_DIRECT refuses
def test_staged_writer_writes_the_bytes_it_is_given(tmp_path, direct, chunk, sparse):
    data = pieces(torch.Generator().manual_seed(0))
    path = tmp_path / "staged"
    fd, is_direct = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, direct)
    try:
        writer = StagedWriter(fd, is_direct, chunk=chunk, sparse=sparse)
        reached = sum(writer.append(piece) for piece in data) + writer.finish()
        os.fsync(fd)
    finally:
        os.close(fd)
    want = b"".join(bytes(piece.numpy()) for piece in data)
    assert reached == len(want)
    assert path.read_bytes() == want  # no padding left at the end, whatever O_DIRECT needed
    if sparse and chunk % HOLE == 0:  # the zero runs cover whole HOLE blocks: not on the disk
        assert os.stat(path).st_blocks * 512 <= len(want) - 2 * 3 * HOLE

    reader = DirectReader(path, direct)
    try:
        for begin, end in [
            (0, 1),
            (3, 5003),
            (4097, 4096 * 5 + 7),
            (len(want) - 10, len(want)),
            (0, len(want)),
        ]:
            assert bytes(reader.read(begin, end).numpy()) == want[begin:end]
        assert bytes(reader.read(len(want) - 2, len(want) + 100).numpy()) == want[-2:]  # the file ends first
    finally:
        reader.close()
