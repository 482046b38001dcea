"""Every command, given a missing path, the wrong kind of directory or a malformed file: one line on stderr,
exit 2, nothing written. Through the real CLI, one process per case (`python -m tfctl ARGS` forked from a server
that imported tfctl and torch once: tests/tfctl_processes.py), run in the background while the other tests
run: see user_error_table.py and the `user_error_table` fixture in tests/conftest.py."""

import pytest

from tests.reliability.user_error_table import CASES


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(user_error_table, case):
    table = user_error_table
    assert table.done.wait(1800)
    result = table.results[case]
    assert (result.returncode, result.stdout) == (2, ""), result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert list(table.cwd(case).iterdir()) == []
    written = {k: v for k, v in table.after.items() if table.before.get(k) != v and not k.startswith("cwd")}
    assert written == {}
