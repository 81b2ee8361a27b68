"""Helper processes that die with the pack that started them, even when it is killed with SIGKILL.

A pack encodes in a ``ProcessPoolExecutor`` whose workers are forked from a fork server; both
outlive a ``kill -9`` of the pack on their own (each worker waits forever on a queue whose writing
end it holds itself), and keep Python's resource tracker alive with them. So:

* the fork server imports this module as a preload; when ``FPLOAD_POOL_PARENT`` names its parent
  process, it asks the kernel (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to be killed when that
  parent dies;
* every pool worker runs :func:`die_with` as its initializer: the kernel kills it when its fork
  server dies, and a watchdog thread ends it within :data:`POLL_S` seconds of the pack's death on any
  system (a process counts as dead once it is gone, a zombie, or its pid belongs to a newer process);
* the resource tracker then reads end-of-file from its last writer and exits by itself.

Example (what ``fpload.pack`` does)::

    start_fork_server(["fpload.pack._encode"])
    ProcessPoolExecutor(workers, mp_context=get_context("forkserver"), initializer=die_with,
                        initargs=(os.getpid(), start_time(os.getpid())))
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: names the pack's pid for the fork server it starts (read at the fork server's preload)
PARENT_ENV = "FPLOAD_POOL_PARENT"
#: seconds between the worker watchdog's looks at the pack process
POLL_S = 0.5

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` from ``/proc`` (Linux), to tell it from a later process reusing the pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def alive(pid: int, started: str | None = None) -> bool:
    """Whether ``pid`` is a running process (not a zombie; the same one as at ``started``, if given)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except FileNotFoundError:
        return False
    except OSError:
        stat = None
    if stat is not None:
        fields = stat[stat.rindex(")") + 2:].split()
        return fields[0] not in ("Z", "X") and (started is None or fields[19] == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with(pid: int, started: str | None = None) -> None:
    """Make this process end when process ``pid`` (started at ``started``) ends, however it ends.

    The kernel kills this process when its direct parent dies (Linux); a daemon thread checks ``pid``
    every :data:`POLL_S` seconds and exits the process once it is gone.
    """
    set_parent_death_signal()
    if not alive(pid, started):  # it died before we started watching
        os._exit(1)

    def watch() -> None:
        while alive(pid, started):
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="fpload-lifeline", daemon=True).start()


def start_fork_server(preload: list[str]) -> None:
    """Start (if not running) multiprocessing's fork server, importing ``preload`` and dying with this process.

    ``FPLOAD_POOL_PARENT`` is set only while the fork server starts, so no other child of this
    process takes it for a parent to die with.
    """
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload([*preload, __name__])
    before = os.environ.get(PARENT_ENV)
    os.environ[PARENT_ENV] = str(os.getpid())
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = before


def _preload_in_fork_server() -> None:
    # the fork server is started by the pack (its parent) with PARENT_ENV set to the pack's pid;
    # any other process importing this module (the pack itself, a worker) has another parent
    try:
        parent = int(os.environ.get(PARENT_ENV, ""))
    except ValueError:
        return
    if os.getppid() == parent and set_parent_death_signal() and os.getppid() != parent:
        os._exit(1)  # the pack died between the two looks


_preload_in_fork_server()
