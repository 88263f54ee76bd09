"""Enter a testbed node and run a command there; also the node's init process.

Run as a plain script (``python3 -I -S nsexec.py ...``): it imports nothing but
the standard library, so it starts fast and works without the project's venv.

* ``nsexec.py init [TAG]``: PID 1 of a node's PID namespace. It only reaps orphans;
  killing it (SIGKILL from the host) makes the kernel kill every process of the
  node, including the containers of every Docker engine running there. TAG is
  ignored: it names the node in ``ps`` output.
* ``nsexec.py run TARGET_PID [--cwd DIR] [--detach LOG] -- CMD...``: joins the
  cgroups and the UTS, network, cgroup, PID and mount namespaces of TARGET_PID
  (a node's init), forks, and runs CMD in the node. In the foreground it
  forwards signals to CMD, passes
  its exit status back (128+N for a signal) and takes CMD down with it when the
  launcher itself is killed (``PR_SET_PDEATHSIG``), so ``Popen.kill()`` and
  timeouts on the launcher reach the real process. With ``--detach`` it prints
  the host PID of CMD (a new session, output appended to LOG) and exits; CMD is
  then a child of the node's init.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import warnings  # noqa: F401  os.execvp imports it lazily: do it before entering a node

_NAMESPACES = ("uts", "net", "cgroup", "pid", "mnt")
_FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def _fail(message: str, code: int = 125) -> None:
    sys.stderr.write(f"nsexec: {message}\n")
    sys.stderr.flush()
    os._exit(code)


def _cgroup_mounts() -> list[tuple[set[str], str]]:
    """(controllers or name=..., mount point) of each cgroup hierarchy; v2 has none."""
    mounts = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, _, tail = line.partition(" - ")
            fstype, _source, options = tail.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                keys = set(options.split(",")) if fstype == "cgroup" else set()
                mounts.append((keys, fields.split()[4]))
    return mounts


def _join_cgroups(target: int) -> None:
    """Move into the cgroups of ``target`` in every hierarchy (host paths)."""
    mounts = _cgroup_mounts()
    with open(f"/proc/{target}/cgroup") as cgroups:
        for line in cgroups:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            wanted = set(controllers.split(",")) if controllers else set()
            points = [p for keys, p in mounts if (wanted <= keys if wanted else not keys)]
            if not points:
                continue
            try:
                with open(f"{points[0]}{path.rstrip('/')}/cgroup.procs", "w") as procs:
                    procs.write(str(os.getpid()))
            except OSError as err:
                _fail(f"cannot join cgroup {controllers}:{path} ({err.strerror})")


def _enter(target: int) -> int:
    """Join the cgroups and namespaces of ``target``, the mount namespace last.

    Returns a descriptor of the host's /proc: once inside, /proc is the node's.
    """
    _join_cgroups(target)
    host_proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fds = []
    for name in _NAMESPACES:
        try:
            fds.append(os.open(f"/proc/{target}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
        except OSError as err:
            _fail(f"node process {target} is gone ({err.strerror})")
    for name, fd in zip(_NAMESPACES, fds, strict=True):
        if _LIBC.setns(fd, 0) != 0:
            _fail(f"setns {name}: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
    return host_proc


def _exec(argv: list[str]) -> None:
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        _fail(f"{argv[0]}: {err.strerror}", 127 if err.errno == 2 else 126)


def _run_detached(argv: list[str], log: str, host_proc: int) -> None:
    """Double fork inside the node so that CMD's parent is the node's init.

    An orphan goes to the reaper of its *parent's* PID namespace, so the middle
    process must live in the node. It cannot see CMD's host PID, which the
    launcher reads from /proc while the middle process waits for it.
    """
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDONLY)
            for fd, target in ((devnull, 0), (out, 1), (out, 2)):
                os.dup2(fd, target)
            _exec(argv)
        os.write(up_w, b"1")
        os.read(down_r, 1)
        os._exit(0)
    os.read(up_r, 1)
    children = os.open(f"{middle}/task/{middle}/children", os.O_RDONLY, dir_fd=host_proc)
    pid = int(os.read(children, 64).split()[0])
    os.close(children)
    os.write(down_w, b"1")
    os.waitpid(middle, 0)
    print(pid, flush=True)


def _run_foreground(argv: list[str]) -> int:
    own_group = not os.isatty(0)
    pid = os.fork()
    if pid == 0:
        if own_group:
            os.setpgid(0, 0)
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the launcher died before prctl: nobody waits for us
            os._exit(125)
        _exec(argv)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(pid, signum) if own_group else os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _init() -> None:
    """Reap orphans until killed; SIGTERM ends the node (and so all of it)."""
    os.chdir("/")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        signal.sigtimedwait({signal.SIGCHLD}, 5.0)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def _parse_run(args: list[str]) -> tuple[int, str, str | None, list[str]]:
    if "--" not in args or not args:
        _fail("usage: nsexec.py run PID [--cwd DIR] [--detach LOG] -- CMD...", 2)
    split = args.index("--")
    opts, argv = args[:split], args[split + 1 :]
    if not opts or not argv:
        _fail("run needs a target pid and a command", 2)
    target, cwd, log = int(opts[0]), "/", None
    rest = opts[1:]
    while rest:
        key, value, rest = rest[0], rest[1], rest[2:]
        if key == "--cwd":
            cwd = value
        elif key == "--detach":
            log = value
        else:
            _fail(f"unknown option {key}", 2)
    return target, cwd, log, argv


def main(args: list[str]) -> int:
    """Entry point: ``init`` or ``run``."""
    if args[:1] == ["init"]:
        _init()
    if args[:1] != ["run"]:
        _fail("usage: nsexec.py init [TAG] | run PID [--cwd DIR] [--detach LOG] -- CMD...", 2)
    target, cwd, log, argv = _parse_run(args[1:])
    host_proc = _enter(target)
    try:
        os.chdir(cwd)
    except OSError as err:
        _fail(f"cwd {cwd}: {err.strerror}")
    if log is not None:
        _run_detached(argv, log, host_proc)
        return 0
    return _run_foreground(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
