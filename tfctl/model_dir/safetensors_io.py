"""The safetensors format without holding a whole file in memory: mapped for reading, streamed for writing.

A safetensors file is an 8-byte little-endian header length, a JSON header (for each tensor its dtype, shape
and [begin, end) byte offsets into the data section), then the data. `map_tensors` maps the file and returns
tensors that point into the mapping (nothing is copied; the pages are read in once, up front).
`write_tensors` writes the header from the names, dtypes and shapes alone, then each tensor's bytes as
the caller produces them, in pieces if it likes (the old rows of a grown tensor straight from the source's
mapping, then the new rows from a reused buffer), so no grown tensor ever exists whole in memory; in the
background, a writer thread writes one block while the caller produces the next.
"""

import collections
import functools
import json
import math
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from tfctl.model_dir.direct_io import DirectReader, StagedWriter, open_file

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
MAX_HEADER = 100_000_000  # the format's own limit


class SafetensorsFormatError(ValueError):
    """The file is not a well-formed safetensors file (the message says why)."""


def read_header(path: str | Path) -> tuple[dict, int]:
    """(header without `__metadata__`, offset of the data section)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        return _parse_header(f.read(8), f.read, size)


def _parse_header(prefix: bytes, read, size: int | None) -> tuple[dict, int]:
    """The header after the 8-byte `prefix`, its bytes from `read(n)`; every tensor's offsets checked against
    the data section of a file of `size` bytes (None: a file still being written, whose reader checks that
    each tensor's bytes are there as it reads them)."""
    if len(prefix) < 8:
        raise SafetensorsFormatError("shorter than a header")
    (length,) = struct.unpack("<Q", prefix)
    if length > (MAX_HEADER if size is None else min(MAX_HEADER, size - 8)):
        raise SafetensorsFormatError(f"header length {length} does not fit the file")
    try:
        header = json.loads(read(length))
    except ValueError as error:
        raise SafetensorsFormatError(f"header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise SafetensorsFormatError("header is not a JSON object")
    header.pop("__metadata__", None)
    data_size = math.inf if size is None else size - 8 - length
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = DTYPES[entry["dtype"]], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsFormatError(f"{name}: malformed entry {entry!r}") from None
        if not 0 <= begin <= end <= data_size or end - begin != math.prod(shape) * dtype.itemsize:
            raise SafetensorsFormatError(f"{name}: offsets {begin}..{end} do not fit the file or the shape")
    return header, 8 + length


def map_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, backed by a private mapping of it (copy-on-write: writing to a
    tensor never changes the file). The pages are populated at once, not faulted in one by one."""
    header, data_start = read_header(path)
    if os.path.getsize(path) == data_start:  # nothing to map: every tensor is empty
        return {name: torch.empty(e["shape"], dtype=DTYPES[e["dtype"]]) for name, e in header.items()}
    with open(path, "rb") as f:
        mapping = mmap.mmap(
            f.fileno(),
            0,
            flags=mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0),
            prot=mmap.PROT_READ | mmap.PROT_WRITE,
        )
    tensors = {}
    for name, entry in header.items():
        dtype, shape = DTYPES[entry["dtype"]], entry["shape"]
        begin, end = entry["data_offsets"]
        if begin == end:
            tensors[name] = torch.empty(shape, dtype=dtype)
            continue
        flat = torch.frombuffer(mapping, dtype=torch.uint8, count=end - begin, offset=data_start + begin)
        tensors[name] = flat.view(dtype).view(shape)  # each tensor keeps the mapping alive
    return tensors


class TensorReader:
    """Reads the tensors of a safetensors file into memory the caller owns (`read_into`) or into one buffer
    it reuses (`read_tensors`): pread, no mapping, so reading a file of any size faults in no page beyond
    those of the destination. With `direct` the reads bypass the page cache (direct_io.py: what the disk
    holds, at no CPU cost per page), where the file system allows it.

    With `written` (the `WrittenBytes` of a `write_tensors` under way) it follows the writer: each read
    waits until the writer has written the bytes it reads (the header first), so a reader in another thread
    checks each tensor as soon as it is in the file, while the rest is being written."""

    def __init__(self, path: str | Path, written: "WrittenBytes | None" = None, direct: bool = False):
        self.written = written
        if written is not None:
            written.wait_for(8)  # the writer has created the file and written the header's length
        self.file = DirectReader(path, direct)
        try:
            size = None if written is not None else self.file.size()
            prefix = bytes(self._read(0, 8).numpy())
            self.header, self.data_start = _parse_header(
                prefix, lambda count: bytes(self._read(8, 8 + count).numpy()), size
            )
        except BaseException:
            self.file.close()
            raise

    def __enter__(self) -> "TensorReader":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def _read(self, begin: int, end: int) -> torch.Tensor:
        if self.written is not None:
            self.written.wait_for(end)
        return self.file.read(begin, end)

    def names(self) -> list[str]:
        return list(self.header)

    def empty(self, name: str) -> torch.Tensor:
        """A new tensor of the dtype and shape of `name`."""
        return torch.empty(self.header[name]["shape"], dtype=DTYPES[self.header[name]["dtype"]])

    def read_into(self, name: str, out: torch.Tensor) -> torch.Tensor:
        entry = self.header[name]
        if (
            list(out.shape) != entry["shape"]
            or out.dtype != DTYPES[entry["dtype"]]
            or not out.is_contiguous()
        ):
            raise ValueError(
                f"{name}: {entry['dtype']} {entry['shape']} does not fit {out.dtype} {list(out.shape)}"
            )
        out.view(-1).view(torch.uint8).copy_(self._tensor_bytes([name])[name])
        return out

    def read_tensors(self, names: list[str]) -> dict[str, torch.Tensor]:
        """The tensors `names` (best lying back to back in the file), read in one go into the reader's
        buffer: views of it, valid until the next read of this reader."""
        tensors = {}
        for name, raw in self._tensor_bytes(names).items():
            entry = self.header[name]
            dtype = DTYPES[entry["dtype"]]
            if raw.storage_offset() % dtype.itemsize:
                raw = raw.clone()  # a misaligned tensor (after an odd-sized one): its own memory
            tensors[name] = raw.view(dtype).view(entry["shape"])
        return tensors

    def _tensor_bytes(self, names: list[str]) -> dict[str, torch.Tensor]:
        spans = {name: self.header[name]["data_offsets"] for name in names}
        begin = self.data_start + min((b for b, _ in spans.values()), default=0)
        end = self.data_start + max((e for _, e in spans.values()), default=0)
        raw = self._read(begin, end)
        if raw.numel() < end - begin:
            short = next(n for n, (_, e) in spans.items() if self.data_start + e > begin + raw.numel())
            raise SafetensorsFormatError(f"{short}: file ends early")
        return {
            name: raw[self.data_start + b - begin : self.data_start + e - begin]
            for name, (b, e) in spans.items()
        }


def _header_bytes(layout: dict[str, tuple[torch.dtype, tuple]], metadata: dict | None) -> bytes:
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape) in layout.items():
        size = math.prod(shape) * dtype.itemsize
        header[name] = {"dtype": NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text


def _write_all(fd: int, data: bytes | torch.Tensor) -> int:
    if isinstance(data, torch.Tensor):
        data = data.contiguous().view(-1).view(torch.uint8).numpy()
    view = memoryview(data).cast("B")
    count = len(view)
    while view:
        view = view[os.write(fd, view) :]
    return count


class WrittenBytes:
    """How many bytes of a file `write_tensors` has written so far, for a `TensorReader` that follows it in
    another thread: `wait_for(end)` returns once the file holds its first `end` bytes (or the writing has
    ended: the reader then finds out what is missing), and raises if the writing failed."""

    def __init__(self):
        self._changed = threading.Condition()
        self._count, self._ended, self._error = 0, False, None

    def add(self, count: int) -> None:
        with self._changed:
            self._count += count
            self._changed.notify_all()

    def end(self, error: BaseException | None = None) -> None:
        """No more bytes will come; `error`: why the writing stopped early."""
        with self._changed:
            self._ended, self._error = True, error
            self._changed.notify_all()

    def wait_for(self, end: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._count >= end or self._ended)
            if self._error is not None:
                raise RuntimeError(f"the file's writing failed ({self._error!r})") from self._error


def write_tensors(
    path: str | Path,
    layout: dict[str, tuple[torch.dtype, tuple]],
    pieces: Iterable[tuple[str, Iterable[torch.Tensor]]],
    metadata: dict | None = None,
    background: bool = False,
    written: WrittenBytes | None = None,
    direct: bool = False,
    in_flight: int = 1,
    sparse: bool = False,
) -> float:
    """Write a safetensors file whose tensors are `layout` (name → (dtype, shape), in file order), their bytes
    taken from `pieces`: (name, row blocks that concatenate to the tensor), in the same order. The file is
    fsynced once, at the end. Returns the seconds spent waiting for writes (the rest was the producer's).

    In the foreground each block is written as soon as it is produced, and the producer may overwrite it
    afterwards. In the `background` a writer thread writes each block while the producer makes the next one
    (disk and CPU at work together), with up to `in_flight` blocks waiting to be written; a block must then
    stay unchanged until `in_flight` more blocks have been produced (a producer reusing memory rotates
    `in_flight` + 1 buffers). With `direct` the bytes are staged into whole
    chunks and written with O_DIRECT, past the page cache (direct_io.py); `sparse` leaves long runs of zero
    bytes as holes (direct_io.StagedWriter). The bytes of the file are the same every way. `written` counts the bytes as they reach the file (for a `TensorReader` following the
    writer), and is ended when the data is written (before the fsync) or the writing fails."""
    names = iter(layout)
    fd, direct = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, direct)
    staged = StagedWriter(fd, direct, sparse=sparse) if direct or sparse else None
    sink = staged.append if staged else functools.partial(_write_all, fd)
    writer = _BackgroundWriter(sink, written, in_flight) if background else _ForegroundWriter(sink, written)
    try:
        writer.write(_header_bytes(layout, metadata))
        for name, blocks in pieces:
            expected = next(names, None)
            if name != expected:
                raise ValueError(f"tensor {name!r} produced where the layout has {expected!r}")
            dtype, shape = layout[name]
            written_elements = 0
            for block in blocks:
                if block.dtype != dtype:
                    raise ValueError(f"{name}: a {block.dtype} block for a {dtype} tensor")
                writer.write(block)
                written_elements += block.numel()
            if written_elements != math.prod(shape):
                raise ValueError(
                    f"{name}: {written_elements} elements written, the layout has {math.prod(shape)}"
                )
        missing = list(names)
        if missing:
            raise ValueError(f"no data for {missing[:3]}")
        writer.wait()
        start = time.perf_counter()
        if staged:
            writer.count(staged.finish())
        if written is not None:
            written.end()
        os.fsync(fd)
        writer.waited += time.perf_counter() - start
    except BaseException as error:
        if written is not None:
            written.end(error)
        raise
    finally:
        writer.close()
        os.close(fd)
    return writer.waited


class _ForegroundWriter:
    """Writes each block at once through `sink` (which returns the bytes that reached the file); `waited`
    counts the seconds spent in it."""

    def __init__(self, sink, written: WrittenBytes | None = None):
        self.sink, self.written, self.waited = sink, written, 0.0

    def write(self, data: bytes | torch.Tensor) -> None:
        start = time.perf_counter()
        self._write(data)
        self.waited += time.perf_counter() - start

    def _write(self, data: bytes | torch.Tensor) -> None:
        self.count(self.sink(data))

    def count(self, count: int) -> None:
        if self.written is not None and count:
            self.written.add(count)

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


class _BackgroundWriter(_ForegroundWriter):
    """Writes the blocks in a thread (os.write releases the GIL), in order, while the caller produces the
    next ones: at most `in_flight` blocks handed over and not yet written; `write` first waits for the oldest
    when there are that many, and `waited` counts those waits."""

    def __init__(self, sink, written: WrittenBytes | None = None, in_flight: int = 1):
        super().__init__(sink, written)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="safetensors-writer")
        self._pending: collections.deque = collections.deque()
        self._in_flight = in_flight

    def write(self, data: bytes | torch.Tensor) -> None:
        self._wait(self._in_flight - 1)
        self._pending.append(self._pool.submit(self._write, data))

    def wait(self) -> None:
        self._wait(0)

    def _wait(self, pending: int) -> None:
        start = time.perf_counter()
        while len(self._pending) > pending:
            self._pending.popleft().result()  # a failed write raises here, in the caller
        self.waited += time.perf_counter() - start

    def close(self) -> None:
        for pending in self._pending:  # the caller failed: let the writes in flight end before the fd closes
            pending.cancel() or pending.exception()
        self._pool.shutdown(wait=True)
