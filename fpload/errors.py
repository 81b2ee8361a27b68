"""The one error hierarchy of fpload.

Every error a user can cause derives from :class:`FploadError` *and* from the matching builtin,
so ``except FileNotFoundError`` keeps working for callers that do not know fpload. Messages name
the bad value, where it came from and what is allowed. The CLI prints ``str(err)`` on one line and
exits with ``err.exit_code`` (1: bad data, 2: bad usage).

Example::

    >>> from fpload.errors import QueryError
    >>> try:
    ...     raise QueryError("unknown column 'fingr' in --where; columns are: finger, ...")
    ... except ValueError as err:  # QueryError is also a ValueError
    ...     print(err.exit_code)
    2
"""

from __future__ import annotations


class FploadError(Exception):
    """Base of every error fpload raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(FploadError, ValueError):
    """A bad argument or option value (usage error, exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or object is invalid: unknown key, bad value, unreadable YAML."""


class QueryError(UsageError):
    """A catalog query is malformed, names an unknown column, or tries to write or escape."""


class DataError(FploadError, ValueError):
    """Input data is malformed (exit code 1)."""


class MetadataError(DataError):
    """A metadata file is missing columns or holds a malformed row."""


class ImageError(DataError):
    """An image file is unreadable, truncated, not an image, or in an unsupported format."""


class DuplicateSampleError(DataError):
    """The same image bytes appear twice with conflicting metadata."""


class NoMatchError(DataError, LookupError):
    """A query that must select samples (``catalog update``) matched none."""


class ConsentError(DataError):
    """A selection holds samples whose subjects have not consented, and the config does not allow it."""


class CatalogError(FploadError, RuntimeError):
    """The catalog file is missing, of an unknown schema version, or inconsistent."""


class CatalogBusyError(CatalogError, TimeoutError):
    """Another process held the catalog file's lock for longer than the lock timeout."""


class RevisionNotFoundError(CatalogError, LookupError):
    """A catalog revision that does not exist was asked for."""


class VersionError(FploadError, RuntimeError):
    """A dataset version is malformed, of an unknown schema version, or conflicts with another."""


class VersionNotFoundError(VersionError, FileNotFoundError):
    """No published dataset version at the given path, name or id."""


class VersionConflictError(VersionError, FileExistsError):
    """The output already holds different content under that name and id."""


class VersionErasedError(VersionNotFoundError):
    """A version tombstoned by an erasure; the message names its successor (exit code 1)."""


class IntegrityError(VersionError):
    """A published file does not match its manifest (size, hash or sample count)."""


class ShardNotFoundError(IntegrityError, FileNotFoundError):
    """A shard or its index named by the manifest is missing."""


class DeviceError(UsageError):
    """The requested device or batch size cannot be served on this machine."""


class LoaderStateError(UsageError):
    """A loader state (``Loader.state_dict()``) that does not belong to this loader: another
    format, dataset version, split or config."""


class PluginError(FploadError, RuntimeError):
    """The fpload DALI operator plugin is missing, built for another DALI, or lacks a backend."""


class StoreError(FploadError, OSError):
    """An object store (``s3://`` …) cannot be reached, refuses the credentials, lacks the bucket,
    or an object cannot be fetched after retries; the message names the URL (exit code 1)."""


class EngineError(FploadError, RuntimeError):
    """A distributed engine (Ray) is not installed, cannot be reached, or a task of it failed for a
    reason other than fpload's own errors after its retries (exit code 1)."""


class RecordError(DataError):
    """A biometric record (an ANSI/NIST-ITL transaction, an ISO/IEC 19794-4 finger image record) is
    truncated, has wrong lengths, an unknown record type, a missing or bad field, or an image that
    does not decode; the message names the file and the record."""


class RootLockedError(FploadError, BlockingIOError):
    """Another erasure holds a version root's erasure lock (``ROOT/.fpload/locks/erase.json``); the
    message names the lock, its holder and its age, and ``--break-lock`` (exit code 1)."""
