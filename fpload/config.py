"""Ground floor of configuration: the ``FPLOAD_*`` environment variables and the bundled configs.

Every stage may import this module; it imports no stage. Stage configs live with their stage
(:class:`fpload.pack.PackConfig`, :class:`fpload.load.LoaderConfig`,
:class:`fpload.features.FeaturesConfig`, :class:`fpload.ops.AugmentOps`) on the shared base
:class:`fpload._frozen.FrozenConfig`.

The YAML files in the repository's ``configs/`` ship inside the package (``fpload/configs`` in the
wheel): one set of files serves as the examples and as the defaults. :func:`resolve_config` turns a
``--config`` value into a file: a path that exists, or the name of a bundled config.

Example::

    >>> from fpload.config import resolve_config, bundled_configs
    >>> resolve_config("demo", "pack").name
    'demo.yaml'
    >>> "train" in bundled_configs("loader")
    True

Environment variables (all read here, nowhere else):

- ``FPLOAD_DEBUG``: when set, the CLI shows tracebacks of user errors.
- ``FPLOAD_WORKERS``: default worker-process count of ``fpload pack``.
- ``FPLOAD_ENGINE``: default engine of ``fpload pack`` and ``fpload catalog ingest`` (``local`` or
  ``ray``; default ``local``). The Ray address itself is Ray's own ``RAY_ADDRESS``.
- ``FPLOAD_PLUGIN``: path of the fpload DALI operator plugin, instead of the installed one.
- ``FPLOAD_TUNE_MALLOC``: ``0`` keeps glibc's malloc defaults (see :mod:`fpload.load._malloc`).
- ``FPLOAD_QUERY_TIMEOUT`` / ``FPLOAD_QUERY_MEMORY``: limits of every catalog query (30 s, 2GB).
- ``FPLOAD_CATALOG_TIMEOUT``: seconds to wait for a catalog that another process is writing (60).
- ``FPLOAD_CACHE_DIR``: this user's cache (verified-version stamps), default ``~/.cache/fpload``.
- ``FPLOAD_SHARD_CACHE_GB``: size bound of the node-local cache of shards of remote versions
  (``CACHE/shards``, default 50); least recently used shards are evicted beyond it.
- ``FPLOAD_STORE_RETRIES``: attempts to fetch one object of a remote version (default 4).
- ``FPLOAD_GC_AGE_HOURS``: ``fpload versions gc`` leaves unpublished objects younger than this (24).
- ``FPLOAD_BENCH_PG_URL``: the PostgreSQL server ``fpload bench catalog --backend postgresql`` uses
  (a ``postgresql://`` URL whose user may create databases), instead of a temporary one.
- ``FPLOAD_ERASE_CRASH_AT``: tests only, a point at which ``fpload erase`` kills itself (crash tests).
- ``FPLOAD_CUDA_ARCHITECTURES``: CUDA architectures of a plugin build (``pip install``,
  ``fpload ops build``), e.g. ``"90"``; default ``"80-real;90"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from fpload.errors import ConfigError

ConfigKind = Literal["pack", "loader", "filters"]
_KINDS: tuple[str, ...] = ("pack", "loader", "filters")


def env_workers() -> int:
    """Default worker count: ``FPLOAD_WORKERS`` or the machine's core count."""
    value = os.environ.get("FPLOAD_WORKERS")
    if value:
        try:
            workers = int(value)
        except ValueError:
            raise ConfigError(f"FPLOAD_WORKERS={value!r} is not an integer") from None
        if workers < 1:
            raise ConfigError(f"FPLOAD_WORKERS={value!r} must be at least 1")
        return workers
    return os.cpu_count() or 1


def env_read_threads() -> int:
    """Source files one pack worker reads at once: ``FPLOAD_READ_THREADS`` (1–256), default 8; raise
    it where reads wait on latency (NFS, cloud disks), e.g. ``FPLOAD_READ_THREADS=32``."""
    value = os.environ.get("FPLOAD_READ_THREADS", "").strip()
    if not value:
        return 8
    try:
        threads = int(value)
    except ValueError:
        raise ConfigError(f"FPLOAD_READ_THREADS={value!r} is not an integer") from None
    if not 1 <= threads <= 256:
        raise ConfigError(f"FPLOAD_READ_THREADS={value!r} must be between 1 and 256")
    return threads


def env_native() -> bool:
    """Whether the C++ loops of ``libfpload_native.so`` may run (PNG decoding and feature sums in a
    pack): ``FPLOAD_NATIVE`` ``1`` (default) or ``0``, e.g. ``FPLOAD_NATIVE=0`` to rule them out;
    the NumPy code then computes the same values, slower."""
    value = os.environ.get("FPLOAD_NATIVE", "").strip().lower()
    if value in ("", "1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"FPLOAD_NATIVE={value!r} must be 1 or 0")


def env_engine() -> str:
    """Default engine: ``FPLOAD_ENGINE`` (``local`` or ``ray``), else ``local``, e.g. ``FPLOAD_ENGINE=ray``."""
    value = os.environ.get("FPLOAD_ENGINE", "").strip().lower()
    if not value:
        return "local"
    if value not in ("local", "ray"):
        raise ConfigError(f"FPLOAD_ENGINE={value!r} must be 'local' or 'ray'")
    return value


def env_debug() -> bool:
    """Whether ``FPLOAD_DEBUG`` asks for tracebacks."""
    return bool(os.environ.get("FPLOAD_DEBUG"))


def env_tune_malloc() -> bool:
    """``FPLOAD_TUNE_MALLOC`` (default on): let the Loader raise glibc's mmap threshold."""
    return os.environ.get("FPLOAD_TUNE_MALLOC", "1").strip().lower() not in ("0", "false", "no", "off")


def env_plugin_path() -> str | None:
    """``FPLOAD_PLUGIN``, the plugin path override, if set."""
    return os.environ.get("FPLOAD_PLUGIN") or None


def env_cuda_architectures() -> str | None:
    """``FPLOAD_CUDA_ARCHITECTURES``, the CUDA architectures of a plugin build, if set."""
    value = os.environ.get("FPLOAD_CUDA_ARCHITECTURES", "").strip()
    return value or None


def env_query_limit_texts() -> tuple[str, str]:
    """``FPLOAD_QUERY_TIMEOUT`` and ``FPLOAD_QUERY_MEMORY`` as given ("" when unset), parsed by
    :func:`fpload.catalog._query.env_query_limits` (defaults 30 s and 2GB)."""
    return (os.environ.get("FPLOAD_QUERY_TIMEOUT", "").strip(), os.environ.get("FPLOAD_QUERY_MEMORY", "").strip())


def env_catalog_timeout() -> str | None:
    """``FPLOAD_CATALOG_TIMEOUT`` as given (seconds to wait for a catalog another process writes),
    parsed by :func:`fpload.catalog._lock.lock_timeout`; None when unset."""
    return os.environ.get("FPLOAD_CATALOG_TIMEOUT", "").strip() or None


def env_bench_pg_url() -> str | None:
    """``FPLOAD_BENCH_PG_URL``: a PostgreSQL server for ``fpload bench catalog --backend postgresql``
    (e.g. ``postgresql://bench@db.internal/postgres``; its user needs CREATEDB, the password comes
    from ``PGPASSWORD`` or ``~/.pgpass``); None when unset (a temporary server is started)."""
    return os.environ.get("FPLOAD_BENCH_PG_URL", "").strip() or None


def env_erase_crash_at() -> str | None:
    """``FPLOAD_ERASE_CRASH_AT`` (tests only): a step name ``NAME`` or ``NAME:N`` at which
    ``fpload erase`` kills itself with SIGKILL (the N-th time it passes that point), to test that a
    rerun completes an interrupted erasure. Unset in normal use."""
    return os.environ.get("FPLOAD_ERASE_CRASH_AT", "").strip() or None


def env_local_rank() -> int | None:
    """``LOCAL_RANK`` as torchrun sets it (None when unset or not an integer); the loader checks
    it against the current CUDA device."""
    text = os.environ.get("LOCAL_RANK", "")
    return int(text) if text.strip().isdigit() else None


def env_cache_dir() -> Path:
    """This user's fpload cache: ``FPLOAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/fpload``, else
    ``~/.cache/fpload`` (verified-version stamps live under it)."""
    root = os.environ.get("FPLOAD_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fpload"


def _positive_float(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if not value > 0:
        raise ConfigError(f"{name}={text!r} must be greater than 0")
    return value


def env_erase_state_dir() -> Path:
    """Where ``fpload erase`` keeps the journal, the verified local copies and the receipt of an
    erasure whose first ``--root`` is on an object store (which has no atomic rename to journal
    on): ``FPLOAD_ERASE_STATE_DIR``, else ``CACHE/erasures`` (:func:`env_cache_dir`). Do not clean
    it while an erasure is unfinished: rerunning the command resumes from the journal there."""
    root = os.environ.get("FPLOAD_ERASE_STATE_DIR", "").strip()
    return Path(root) if root else env_cache_dir() / "erasures"


def env_shard_cache_bytes() -> int:
    """``FPLOAD_SHARD_CACHE_GB`` (default 50) in bytes: the bound of the node-local shard cache of
    remote versions, e.g. ``FPLOAD_SHARD_CACHE_GB=0.5``."""
    return int(_positive_float("FPLOAD_SHARD_CACHE_GB", 50.0) * 1e9)


def env_store_retries() -> int:
    """``FPLOAD_STORE_RETRIES`` (default 4): attempts to fetch one object of a remote version,
    with exponential backoff between them."""
    return max(1, int(_positive_float("FPLOAD_STORE_RETRIES", 4)))


def env_gc_age_seconds() -> float:
    """``FPLOAD_GC_AGE_HOURS`` (default 24) in seconds: the age under which ``fpload versions gc``
    leaves an unpublished object alone (a pack may still be writing it)."""
    return _positive_float("FPLOAD_GC_AGE_HOURS", 24.0) * 3600


def env_erase_lock_seconds() -> float:
    """``FPLOAD_ERASE_LOCK_HOURS`` (default 24) in seconds: how long an erasure's lock on a root
    (``ROOT/.fpload/locks/erase.json``) stays live; an older one is stale and another erasure takes
    it over. Set it above the longest erasure you run, e.g. ``FPLOAD_ERASE_LOCK_HOURS=48``."""
    return _positive_float("FPLOAD_ERASE_LOCK_HOURS", 24.0) * 3600


def configs_root() -> Path:
    """The folder of the bundled configs: ``fpload/configs`` of the installed package (a wheel, or
    an editable install's build), else the source checkout's ``configs/`` (the same files).
    """
    import fpload  # the top package: already imported, imports nothing

    candidates = [Path(entry) / "configs" for entry in fpload.__path__]
    candidates.append(Path(__file__).resolve().parent.parent / "configs")
    for folder in candidates:
        if (folder / "pack").is_dir():
            return folder
    raise ConfigError(f"the bundled configs are missing (looked in {', '.join(map(str, candidates))}); "
                      "reinstall fpload")


def bundled_configs(kind: ConfigKind) -> list[str]:
    """Names of the bundled configs of one kind, e.g. ``bundled_configs("pack")`` → ``['default', 'demo', ...]``."""
    if kind not in _KINDS:
        raise ConfigError(f"unknown config kind {kind!r} (allowed: {', '.join(_KINDS)})")
    return sorted(p.stem for p in (configs_root() / kind).glob("*.yaml"))


def resolve_config(value: str | Path, kind: ConfigKind) -> Path:
    """The YAML file a ``--config`` value means: an existing path, or a bundled config's name.

    ``resolve_config("demo", "pack")`` is the packaged ``configs/pack/demo.yaml`` from any
    directory; ``resolve_config("my/pack.yaml", "pack")`` is that file. Anything else is a
    ConfigError that lists the bundled names.
    """
    path = Path(value)
    if path.is_file():
        return path
    name = str(value)
    if name.endswith((".yaml", ".yml")):
        name = Path(name).stem if Path(name).parent in (Path("."), Path("configs") / kind) else ""
    if name and "/" not in name and name in bundled_configs(kind):
        return configs_root() / kind / f"{name}.yaml"
    raise ConfigError(
        f"{kind} config {str(value)!r}: no such file, and not a bundled {kind} config "
        f"(bundled: {', '.join(bundled_configs(kind))})")
