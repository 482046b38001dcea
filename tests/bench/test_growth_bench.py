"""The growth benchmark's floors: raw writes of a given number of bytes, through the page cache and with
O_DIRECT (any size: the last partial chunk is padded to the block size, then the file cut)."""

import pytest

from tfctl.bench.growth import CHUNK, raw_direct_write_seconds, raw_write_seconds


@pytest.mark.parametrize("write", [raw_write_seconds, raw_direct_write_seconds])
@pytest.mark.parametrize("size", [5, CHUNK + 4097])
def test_raw_writes_leave_nothing_and_time_something(tmp_path, write, size, monkeypatch):
    sizes = []
    real_unlink = type(tmp_path).unlink

    def unlink(path, *args):  # the file's size as written, just before the benchmark removes it
        sizes.append(path.stat().st_size)
        real_unlink(path, *args)

    monkeypatch.setattr(type(tmp_path), "unlink", unlink)
    assert write(tmp_path / "raw", size) > 0
    assert sizes == [size] and list(tmp_path.iterdir()) == []
