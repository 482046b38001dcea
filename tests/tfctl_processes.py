"""`python -m tfctl ARGS` as a process of its own, without paying its imports each time.

A server process imports tfctl's CLI and torch once (about 2 s of CPU that every torch-loading command pays
again), then forks one child per command. The child becomes `python -m tfctl ARGS` from there on: its own
working directory, environment, stdin (/dev/null), stdout and stderr (files, read back as text), exit code and
signals; the interpreter's own handling of SystemExit and of an uncaught traceback. What it shares with the
server is only what `import tfctl.cli, torch` did under the same environment: one server per distinct
environment (a variable read at import, OMP_NUM_THREADS or HF_HUB_OFFLINE, sees the command's own value).

Tests of what a fresh interpreter does (imports that --help avoids, start-up) start one themselves; so do the
tests that signal or kill tfctl. TFCTL_TEST_FRESH=1 runs every command in a fresh interpreter instead, the way
the suite did before this module."""

import json
import locale
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# what nearly every command imports (and no module that reads the environment to set itself up)
PRELOAD = ("tfctl.cli", "torch")
IGNORED = ("PYTEST_CURRENT_TEST",)  # changes with every test, read by no import
MAX_SERVERS = 4


def fresh() -> bool:
    return os.environ.get("TFCTL_TEST_FRESH", "") not in ("", "0")


# ---------------------------------------------------------------------------------------------------- server


def _serve(replies: int) -> dict | None:
    """The server's loop: a request per line on stdin, a fork per request, a reply line when each child ends.
    Returns in a child only, with its request."""
    import select

    pending, buffer = {}, b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.02 if pending else None)
        for pid in list(pending):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reply = {"id": pending.pop(pid), "code": os.waitstatus_to_exitcode(status)}
                os.write(replies, (json.dumps(reply) + "\n").encode())
        if not ready:
            continue
        chunk = os.read(0, 65536)
        if not chunk:  # the suite ended: children still running finish on their own
            os._exit(0)
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                os.close(replies)
                return request
            pending[pid] = request["id"]
            os.write(replies, (json.dumps({"id": request["id"], "pid": pid}) + "\n").encode())


def _become_tfctl(request: dict) -> None:
    """In the forked child: the process `python -m tfctl ARGS` would be, from its first line of tfctl to its
    exit (the interpreter's handling of SystemExit, a traceback, non-daemon threads and atexit; not its teardown
    of every module, which here would copy every page shared with the server)."""
    import atexit
    import runpy
    import threading

    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()  # as `python -m` puts it
    sys.argv = ["tfctl", *request["args"]]
    code, interrupted = 0, False
    try:
        runpy.run_module("tfctl", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            code = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except BaseException as error:
        sys.excepthook(type(error), error, error.__traceback__)
        code, interrupted = 1, isinstance(error, KeyboardInterrupt)
    threading._shutdown()  # the interpreter waits for non-daemon threads, then runs atexit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if interrupted:  # an uncaught Ctrl-C ends Python by SIGINT itself
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)


def _server_main() -> None:
    replies = int(sys.argv[1])
    for name in PRELOAD:
        __import__(name)
    import gc

    gc.freeze()  # the preloaded objects stay out of the children's collections: their pages stay shared
    os.write(replies, b'{"ready": true}\n')
    request = _serve(replies)
    _become_tfctl(request)  # raises SystemExit (tfctl.cli.main always exits) or a bug's traceback


# ---------------------------------------------------------------------------------------------------- client


class Server:
    """One server process, for one environment; thread-safe (the user-error table runs beside the tests)."""

    def __init__(self, env: dict):
        read, write = os.pipe()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(write)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            pass_fds=(write,),
            env=env,
        )
        os.close(write)
        self.replies = os.fdopen(read, "rb")
        self.lock, self.next_id, self.waiting, self.users = threading.Lock(), 0, {}, 0
        line = self.replies.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"the tfctl server did not start:\n{self.log.read().decode()[-3000:]}")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.replies:
            reply = json.loads(line)
            with self.lock:
                slot = self.waiting[reply["id"]]
            slot.update(reply)
            if "code" in reply:
                slot["done"].set()
            else:
                slot["started"].set()
        with self.lock:  # the server died: nothing more will come
            for slot in self.waiting.values():
                slot.setdefault("code", None)
                slot["started"].set()
                slot["done"].set()

    def run(self, args: list[str], cwd: str, env: dict, timeout: float | None) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="tfctl-run-") as scratch:
            out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
            with self.lock:
                self.next_id += 1
                key = self.next_id
                slot = self.waiting[key] = {"started": threading.Event(), "done": threading.Event()}
                request = dict(id=key, args=args, cwd=cwd, env=env, stdout=str(out), stderr=str(err))
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
            try:
                slot["started"].wait()
                if not slot["done"].wait(timeout):
                    os.kill(slot["pid"], signal.SIGKILL)
                    slot["done"].wait()
                    raise subprocess.TimeoutExpired(["tfctl", *args], timeout, read(out), read(err))
                if slot["code"] is None:
                    self.log.seek(0)
                    raise RuntimeError(f"the tfctl server died:\n{self.log.read().decode()[-3000:]}")
                return subprocess.CompletedProcess(["tfctl", *args], slot["code"], read(out), read(err))
            finally:
                with self.lock:
                    del self.waiting[key]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def read(path: Path) -> str:
    """A file as subprocess.run(text=True) reads a pipe: the locale's encoding, universal newlines."""
    if not path.exists():
        return ""
    text = path.read_bytes().decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


_servers: dict[tuple, Server] = {}  # oldest use first
_servers_lock = threading.Lock()


def server_for(env: dict) -> Server:
    """The server of this environment, started at its first command; the least recently used idle server
    beyond MAX_SERVERS is closed (each holds torch in memory)."""
    key = tuple(sorted((k, v) for k, v in env.items() if k not in IGNORED))
    with _servers_lock:
        server = _servers.pop(key, None) or Server({k: v for k, v in env.items() if k not in IGNORED})
        _servers[key] = server
        server.users += 1
        idle = [k for k, s in _servers.items() if s.users == 0]
        for old in idle[: max(0, len(_servers) - MAX_SERVERS)]:
            _servers.pop(old).close()
        return server


def close_servers() -> None:
    with _servers_lock:
        while _servers:
            _servers.popitem()[1].close()


def run_tfctl_process(args, cwd=None, env=None, timeout=None) -> subprocess.CompletedProcess:
    """`python -m tfctl ARGS` with cwd and the full environment `env`: stdout and stderr as text, its exit code
    (negative: the signal that ended it). Raises subprocess.TimeoutExpired past `timeout` seconds."""
    args = [str(a) for a in args]
    env = dict(os.environ if env is None else env)
    cwd = str(cwd or os.getcwd())
    if fresh():
        return subprocess.run(
            [sys.executable, "-m", "tfctl", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    server = server_for(env)
    try:
        return server.run(args, cwd, env, timeout)
    finally:
        with _servers_lock:
            server.users -= 1


if __name__ == "__main__":
    _server_main()
