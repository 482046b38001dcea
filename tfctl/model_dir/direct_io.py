"""Direct I/O (O_DIRECT) for the big file a growth writes and reads back: the bytes go between the disk and
our own buffers, past the page cache.

Why: the page cache's write path costs CPU for every 4 KiB page (allocate it, copy into it, account it as
dirty, write it back): 0.6-2.2 CPU-seconds per GB on the 2-core machine of docs/benchmarks.md, where the
disk itself took 2 GB in 0.9 s with O_DIRECT (0.07 s of CPU). And a file read back with O_DIRECT right after
it was written comes from the disk, as a later reader will get it, not from a copy in memory.

O_DIRECT wants the memory, the file offset and the length of each transfer aligned to the device's block
size: the writer stages the byte stream in an aligned buffer and writes whole chunks at chunk-aligned offsets
(the last one padded, then the file cut to its size); a read covers the aligned range around what it wants.
Where the file system refuses O_DIRECT (tmpfs, some network file systems), at open or at the first transfer,
the same code runs through the page cache: the same bytes, only slower.
"""

import errno
import fcntl
import os
from pathlib import Path

import torch

ALIGN = 4096  # the block size O_DIRECT transfers are aligned to (a multiple of every common device's)
CHUNK = 32 * 2**20  # bytes per write: a multiple of ALIGN
HOLE = (
    64 * 2**10
)  # a sparse writer leaves aligned runs of this many zero bytes unwritten: a multiple of ALIGN


def open_file(path: str | Path, flags: int, direct: bool) -> tuple[int, bool]:
    """(fd, whether it is O_DIRECT): O_DIRECT when asked for and the file system takes it."""
    if direct and hasattr(os, "O_DIRECT"):
        try:
            return os.open(path, flags | os.O_DIRECT, 0o644), True
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
    return os.open(path, flags, 0o644), False


def _drop_direct(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)


def aligned_empty(size: int) -> torch.Tensor:
    """`size` bytes (uint8) whose address is a multiple of ALIGN."""
    raw = torch.empty(size + ALIGN, dtype=torch.uint8)
    shift = -raw.data_ptr() % ALIGN
    return raw[shift : shift + size]


def _bytes_view(data: bytes | torch.Tensor) -> memoryview:
    if isinstance(data, torch.Tensor):
        data = data.contiguous().view(-1).view(torch.uint8).numpy()
    return memoryview(data).cast("B")


class DirectReader:
    """Reads byte ranges of a file into one reused aligned buffer (`read` returns a view of it, valid until
    the next read), with O_DIRECT if `direct` and the file system allows it."""

    def __init__(self, path: str | Path, direct: bool):
        self.fd, self.direct = open_file(path, os.O_RDONLY, direct)
        self._buffer = torch.empty(0, dtype=torch.uint8)

    def close(self) -> None:
        os.close(self.fd)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def read(self, begin: int, end: int) -> torch.Tensor:
        """The file's bytes [begin, end) as uint8 (fewer where the file ends first)."""
        start = begin - begin % ALIGN if self.direct else begin
        stop = -(-end // ALIGN) * ALIGN if self.direct else end
        if self._buffer.numel() < stop - start:
            self._buffer = torch.empty(0, dtype=torch.uint8)  # free the old one first
            self._buffer = aligned_empty(stop - start)
        view, offset = _bytes_view(self._buffer)[: stop - start], start
        while view:
            try:
                count = os.preadv(self.fd, [view], offset)
            except OSError as error:
                if not (self.direct and error.errno == errno.EINVAL):
                    raise
                _drop_direct(self.fd)  # an alignment the device does not take: through the page cache
                self.direct = False
                continue
            if count == 0:
                break
            view, offset = view[count:], offset + count
        return self._buffer[begin - start : min(offset, end) - start]


class StagedWriter:
    """Writes a byte stream to `fd` (opened with `open_file`) through an aligned staging buffer, in whole
    chunks of CHUNK bytes: the alignment O_DIRECT needs, whatever the sizes of the pieces appended.

    `sparse`: each run of zero bytes that covers whole HOLE-sized blocks of the file is not written but left
    as a hole (the file is extended over it), which reads back as zeros at no cost in disk space or transfer:
    a `preserve` growth's new key tokens, ~45 % of a 1.4B model grown from 124M."""

    def __init__(self, fd: int, direct: bool, chunk: int = CHUNK, sparse: bool = False):
        self.fd, self.direct, self.sparse = fd, direct, sparse
        self._stage = aligned_empty(chunk)
        self._fill = 0
        self._offset = 0  # where the staged bytes go in the file

    def append(self, data: bytes | torch.Tensor) -> int:
        """Stage `data` (writing each chunk it fills); returns the bytes that reached the file."""
        if isinstance(data, torch.Tensor):
            source = data.contiguous().view(-1).view(torch.uint8)
        else:
            source = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        written, chunk = 0, self._stage.numel()
        while source.numel():
            count = min(source.numel(), chunk - self._fill)
            self._stage[self._fill : self._fill + count].copy_(source[:count])  # releases the GIL
            self._fill += count
            source = source[count:]
            if self._fill == chunk:
                written += self._write(chunk)
        return written

    def finish(self) -> int:
        """Write what is staged: padded to ALIGN under O_DIRECT, then the file cut to its true end."""
        fill = self._fill
        if not fill:
            return 0
        padded = -(-fill // ALIGN) * ALIGN if self.direct else fill
        self._stage[fill:padded].zero_()
        self._write(padded)
        if padded != fill or self.sparse:
            os.ftruncate(self.fd, self._offset - padded + fill)
        return fill

    def _write(self, count: int) -> int:
        """Write the first `count` staged bytes at their offset; returns `count`."""
        view = _bytes_view(self._stage)[:count]
        runs = self._data_runs(count) if self.sparse else [(0, count)]
        for begin, end in runs:
            self._pwrite(view[begin:end], self._offset + begin)
        self._offset += count
        if (
            not runs or runs[-1][1] < count
        ):  # it ends in a hole: the file reaches its end, so it reads as zeros
            os.ftruncate(self.fd, self._offset)
        self._fill = 0
        return count

    def _data_runs(self, count: int) -> list[tuple[int, int]]:
        """[begin, end) of the staged bytes to write: all but the whole HOLE-sized blocks of zeros."""
        blocks = count // HOLE
        nonzero = self._stage[: blocks * HOLE].view(blocks, HOLE).any(dim=1).tolist()
        nonzero += [True] * (count > blocks * HOLE)  # a last, partial block is written as it is
        runs: list[tuple[int, int]] = []
        for index, data in enumerate(nonzero):
            if not data:
                continue
            begin, end = index * HOLE, min((index + 1) * HOLE, count)
            if runs and runs[-1][1] == begin:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((begin, end))
        return runs

    def _pwrite(self, view: memoryview, offset: int) -> None:
        while view:
            try:
                written = os.pwrite(self.fd, view, offset)
            except OSError as error:
                if not (self.direct and error.errno == errno.EINVAL):
                    raise
                _drop_direct(self.fd)  # an alignment the device does not take: through the page cache
                self.direct = False
                continue
            view, offset = view[written:], offset + written
