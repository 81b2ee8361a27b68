"""The Ray engine's plumbing shared by ``fpload pack --engine ray`` and ``catalog ingest --engine ray``.

Ray is an optional extra (``pip install fpload[ray]``) imported only here, lazily. The driver
connects to a cluster (:func:`connect`), runs a module-level function as Ray tasks over a bounded
window, in order (:func:`ordered_map`), and gets fpload's own error back when a task raised one
(a bad image stays one line naming the file); any other task failure, after Ray's retries, is an
:class:`~fpload.errors.EngineError` naming the task.

Example::

    ray = connect("auto")                       # or None: a local Ray instance, or RAY_ADDRESS
    task = remote(_probe_batch, retries=2)
    for result in ordered_map(task, [(batch,) for batch in batches], window=4):
        ...
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from fpload.errors import EngineError, FploadError, UsageError

#: the engines ``--engine`` accepts
ENGINES = ("local", "ray")
#: how often a task that failed with an OSError (a flaky shared filesystem or store) or whose
#: worker died is run again before the whole run fails
TASK_RETRIES = 3
#: seconds the driver waits for cancelled tasks to stop before it removes their temporary files
CANCEL_WAIT_S = 60.0
#: Ray's own settings that bound connecting to an explicit ``HOST:PORT`` (not ``ray://``): one
#: attempt (``ray._private.node._init_gcs_client`` makes 20 by default) whose cluster-id request
#: waits 5 s (30 by default); with the 5 s channel and pubsub waits it is ~15 s, where Ray's
#: defaults take ~10 minutes to give up on an unused port. A value set in the environment wins.
CONNECT_BOUNDS = {"RAY_gcs_server_port_wait_time_s": "1", "RAY_py_gcs_connect_timeout_s": "5"}


def check_engine(engine: str, address: str | None = None) -> str:
    """``engine`` if it is one of :data:`ENGINES`; ``address`` only goes with ``ray``.

    >>> check_engine("ray", "auto")
    'ray'
    """
    if engine not in ENGINES:
        raise UsageError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise UsageError(f"--address {address!r} needs --engine ray")
    return engine


def import_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`EngineError` saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise EngineError(f"--engine ray needs Ray, which is not installed ({err}); "
                          "install it with: pip install 'fpload[ray]'") from None
    return ray


def connect(address: str | None = None) -> Any:
    """Connect this process to a Ray cluster and return ``ray``.

    ``address``: ``"auto"`` (a cluster started on this node with ``ray start --head``),
    ``"ray://HOST:10001"`` (a remote cluster's client server), ``"HOST:6379"``, or None: Ray's
    default (``RAY_ADDRESS`` when set, else a new local instance with this node's CPUs). A process
    already connected (``ray.init`` called by the caller) keeps its connection.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    explicit = address not in (None, "auto") and not str(address).startswith("ray://")
    try:
        # a ray:// address is bounded by Ray Client itself (3 attempts, about 30 s), which also
        # warns what the one-line error below says: its warning is not repeated
        with _bounded(CONNECT_BOUNDS if explicit else {}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Ray Client connection timed out", category=UserWarning)
            ray.init(address=address, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as err:
        where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        auth = ("; a cluster with token authentication (Ray's default) also needs RAY_AUTH_MODE=token and its "
                "token in RAY_AUTH_TOKEN or ~/.ray/auth_token") if address is not None else ""
        raise EngineError(f"cannot connect to the Ray cluster at {where} ({first}); start one with "
                          f"`ray start --head` and pass --address auto, or give ray://HOST:10001{auth}") from None
    return ray


@contextlib.contextmanager
def _bounded(settings: dict[str, str]) -> Iterator[None]:
    """Ray's ``RAY_*`` settings, where the environment lacks them, while ``ray.init`` runs (then the
    environment is as before: child processes do not inherit them)."""
    added = {k: v for k, v in settings.items() if k not in os.environ}
    if not added:
        yield
        return
    os.environ.update(added)
    try:
        try:  # Ray's C++ settings were read at import: read again (Ray does the same for RAY_AUTH_MODE)
            from ray._raylet import Config

            Config.initialize("")
        except Exception:  # noqa: BLE001 - another Ray: its defaults apply, only slower to fail
            pass
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def cluster_cpus(ray: Any) -> int:
    """CPUs of the connected cluster (at least 1)."""
    try:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    except Exception:  # noqa: BLE001 - a client connection may not report resources
        return 1


def remote(fn: Callable[..., Any], retries: int = TASK_RETRIES) -> Any:
    """``fn`` as a Ray task run again up to ``retries`` times when its worker dies or it raises an
    ``OSError`` (a flaky shared filesystem or store); fpload's data and usage errors (a bad image,
    a folder the node cannot see) are ``ValueError``s, permanent, and fail at once."""
    ray = import_ray()
    return ray.remote(max_retries=retries, retry_exceptions=[OSError])(fn)


def _unwrap(ray: Any, err: BaseException, what: str) -> BaseException:
    """fpload's own error a task raised (unchanged, one line), or an :class:`EngineError`."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, FploadError):
        return cause
    if isinstance(err, ray.exceptions.TaskCancelledError):
        return EngineError(f"{what}: cancelled")
    text = str(cause if cause is not None else err).strip()
    first = text.splitlines()[-1] if text else type(err).__name__
    return EngineError(f"{what} failed on Ray (OSErrors and lost workers are retried {TASK_RETRIES} "
                       f"times): {first}")


def ordered_map(task: Any, args: Iterable[tuple], window: int, what: str = "a Ray task",
                on_submit: Callable[[int], None] | None = None) -> Iterator[Any]:
    """Results of ``task.remote(*a)`` for every ``a`` of ``args``, in order, at most ``window`` in flight.

    When a task fails (after its retries) or the consumer stops, every task still in flight is
    cancelled and waited for (up to :data:`CANCEL_WAIT_S`), so nothing writes after this returns;
    then the error is raised (fpload's own, or :class:`EngineError` naming ``what`` and the task's
    position).
    """
    ray = import_ray()
    pending: deque = deque()
    source = iter(args)
    n = 0

    def submit() -> bool:
        nonlocal n
        nxt = next(source, None)
        if nxt is None:
            return False
        pending.append((n, task.remote(*nxt)))
        n += 1
        if on_submit is not None:
            on_submit(n)
        return True

    try:
        while len(pending) < max(1, window) and submit():
            pass
        while pending:
            i, ref = pending[0]
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as err:
                pending.popleft()  # finished (failed): never cancelled below
                raise _unwrap(ray, err, f"{what} {i}") from None
            pending.popleft()
            submit()
            yield result
    finally:
        if pending:
            # only tasks still running are cancelled: Ray 2.x aborts the driver ("Tried to complete
            # task that was not pending", task_manager.cc) when a cancel races a task's completion
            refs = [r for _, r in pending]
            _, running = ray.wait(refs, num_returns=len(refs), timeout=0)
            for r in running:
                ray.cancel(r)
            if running:
                ray.wait(running, num_returns=len(running), timeout=CANCEL_WAIT_S)
