"""The safetensors format without holding a whole file in memory: mapped for reading, streamed for writing.

A safetensors file is an 8-byte little-endian header length, a JSON header (for each tensor its dtype, shape
and [begin, end) byte offsets into the data section), then the data. `map_tensors` maps the file and returns
tensors that point into the mapping (nothing is copied; the pages are read in once, up front).
`write_tensors` writes the header from the names, dtypes and shapes alone, then each tensor's bytes as
the caller produces them, in pieces if it likes (the old rows of a grown tensor straight from the source's
mapping, then the new rows from a reused buffer), so no grown tensor ever exists whole in memory; in the
background, a writer thread writes one block while the caller produces the next.
"""

import json
import math
import mmap
import os
import struct
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

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
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SafetensorsFormatError("shorter than a header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER, size - 8):
            raise SafetensorsFormatError(f"header length {length} does not fit the file")
        try:
            header = json.loads(f.read(length))
        except ValueError as error:
            raise SafetensorsFormatError(f"header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise SafetensorsFormatError("header is not a JSON object")
    header.pop("__metadata__", None)
    data_size = size - 8 - length
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
    """Reads the tensors of a safetensors file into tensors the caller owns (pread: no mapping, so reading a
    file of any size faults in no page beyond those of the destination, which can be reused)."""

    def __init__(self, path: str | Path):
        self.header, self.data_start = read_header(path)
        self.fd = os.open(path, os.O_RDONLY)

    def __enter__(self) -> "TensorReader":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

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
        view = memoryview(out.view(-1).view(torch.uint8).numpy()).cast("B")
        offset = self.data_start + entry["data_offsets"][0]
        while view:
            read = os.preadv(self.fd, [view], offset)
            if read == 0:
                raise SafetensorsFormatError(f"{name}: file ends early")
            view, offset = view[read:], offset + read
        return out


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


def _write_all(fd: int, data: bytes | torch.Tensor) -> None:
    if isinstance(data, torch.Tensor):
        data = data.contiguous().view(-1).view(torch.uint8).numpy()
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def write_tensors(
    path: str | Path,
    layout: dict[str, tuple[torch.dtype, tuple]],
    pieces: Iterable[tuple[str, Iterable[torch.Tensor]]],
    metadata: dict | None = None,
    background: bool = False,
) -> float:
    """Write a safetensors file whose tensors are `layout` (name → (dtype, shape), in file order), their bytes
    taken from `pieces`: (name, row blocks that concatenate to the tensor), in the same order. The file is
    fsynced once, at the end. Returns the seconds spent waiting for writes (the rest was the producer's).

    In the foreground each block is written as soon as it is produced, and the producer may overwrite it
    afterwards. In the `background` a writer thread writes each block while the producer makes the next one
    (disk and CPU at work together); a block must then stay unchanged until the block after it has been
    produced (a producer reusing memory rotates two buffers). The bytes written are the same either way."""
    names = iter(layout)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    writer = _BackgroundWriter(fd) if background else _ForegroundWriter(fd)
    try:
        writer.write(_header_bytes(layout, metadata))
        for name, blocks in pieces:
            expected = next(names, None)
            if name != expected:
                raise ValueError(f"tensor {name!r} produced where the layout has {expected!r}")
            dtype, shape = layout[name]
            written = 0
            for block in blocks:
                if block.dtype != dtype:
                    raise ValueError(f"{name}: a {block.dtype} block for a {dtype} tensor")
                writer.write(block)
                written += block.numel()
            if written != math.prod(shape):
                raise ValueError(f"{name}: {written} elements written, the layout has {math.prod(shape)}")
        missing = list(names)
        if missing:
            raise ValueError(f"no data for {missing[:3]}")
        writer.wait()
        start = time.perf_counter()
        os.fsync(fd)
        writer.waited += time.perf_counter() - start
    finally:
        writer.close()
        os.close(fd)
    return writer.waited


class _ForegroundWriter:
    """Writes each block at once; `waited` counts the seconds spent in write()."""

    def __init__(self, fd: int):
        self.fd, self.waited = fd, 0.0

    def write(self, data: bytes | torch.Tensor) -> None:
        start = time.perf_counter()
        _write_all(self.fd, data)
        self.waited += time.perf_counter() - start

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


class _BackgroundWriter(_ForegroundWriter):
    """Writes each block in a thread (os.write releases the GIL) while the caller produces the next one: one
    block in flight; `write` first waits for the one before, and `waited` counts those waits."""

    def __init__(self, fd: int):
        super().__init__(fd)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="safetensors-writer")
        self._pending = None

    def write(self, data: bytes | torch.Tensor) -> None:
        self.wait()
        self._pending = self._pool.submit(_write_all, self.fd, data)

    def wait(self) -> None:
        if self._pending is not None:
            start = time.perf_counter()
            pending, self._pending = self._pending, None
            pending.result()  # a failed write raises here, in the caller
            self.waited += time.perf_counter() - start

    def close(self) -> None:
        if self._pending is not None:  # the caller failed: let the write in flight end before the fd closes
            self._pending.exception()
        self._pool.shutdown(wait=True)
