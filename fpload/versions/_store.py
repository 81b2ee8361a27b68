"""Where versions live: local folders or fsspec URLs (``s3://bucket/prefix``, ``gs://``, ``file://``).

A *location* is a string or path. Local paths and ``file://`` URLs are served by the local code
(folders, renames); any other URL is an object store reached through fsspec (``s3fs`` for
``s3://``: ``pip install fpload[s3]``; ``gcsfs`` for ``gs://``: ``pip install fpload[gcs]``).
Credentials and endpoints are fsspec's: for S3 the usual ``AWS_*`` variables or ``~/.aws`` files,
and ``FSSPEC_S3_ENDPOINT_URL`` (or ``FSSPEC_S3`` as JSON) for an S3-compatible server; for GCS
``GOOGLE_APPLICATION_CREDENTIALS`` or gcloud's application-default credentials (``FSSPEC_GS_TOKEN``
names a token file, or ``anon``), and ``STORAGE_EMULATOR_HOST`` for a GCS-compatible server.

Every failure of the store becomes one :class:`fpload.errors.StoreError` line naming the URL:
unreachable endpoint, refused credentials, missing bucket.

Example::

    >>> is_remote("s3://team-data/versions"), is_remote("versions"), local_path("file:///data/v")
    (True, False, PosixPath('/data/v'))
    >>> join("s3://team-data/versions/", "thumbs", "6aac")
    's3://team-data/versions/thumbs/6aac'
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from fpload.errors import FploadError, StoreError


def is_remote(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a URL of a store other than the local file system."""
    if isinstance(location, Path):
        return False
    text = os.fspath(location)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() not in ("file", "local") and scheme.replace("+", "").isalnum()


def local_path(location: str | os.PathLike) -> Path:
    """A local location as a Path (``file://`` stripped)."""
    text = os.fspath(location)
    for prefix in ("file://", "local://"):
        if text.startswith(prefix):
            return Path(text[len(prefix):])
    return Path(text)


def join(url: str, *parts: str) -> str:
    """``url`` and ``parts`` joined by single slashes."""
    return "/".join([url.rstrip("/")] + [p.strip("/") for p in parts if p])


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def parent(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0]


def filesystem(url: str):
    """The fsspec file system of ``url`` (an instance fsspec caches) and the path inside it.

    The ``FSSPEC_<PROTOCOL>_<OPTION>`` variables are read at each call, so a variable set after
    import (a test's endpoint) counts."""
    try:
        import fsspec
        import fsspec.config
    except ImportError:  # pragma: no cover - fsspec ships with fpload's dependencies
        raise StoreError(f"{url}: fsspec is not installed (pip install fpload[s3])") from None
    fsspec.config.set_conf_env(fsspec.config.conf)
    _quiet_store_loggers()
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as err:
        raise StoreError(f"{url}: the file system of this URL is not installed ({err}); for s3:// "
                         "install fpload[s3], for gs:// fpload[gcs]") from None
    except ValueError as err:
        raise StoreError(f"{url}: not a store URL fsspec knows ({err})") from None
    fs.invalidate_cache()  # listings are re-read: another process may have published meanwhile
    return fs, path


class _QuietRetries:
    """A logging filter for gcsfs's logger: its "out of retries" / "non-retriable" records carry a
    traceback, while fpload reports the same failure as one :class:`StoreError` line."""

    def filter(self, record) -> bool:
        msg = str(record.msg)
        return not ("out of retries on exception" in msg or "non-retriable exception" in msg)


def _quiet_store_loggers() -> None:
    import logging

    log = logging.getLogger("gcsfs")
    if not any(isinstance(f, _QuietRetries) for f in log.filters):
        log.addFilter(_QuietRetries())


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    name = type(err).__name__
    low = text.lower()
    if "bucket does not exist" in low or "nosuchbucket" in low:
        return "the bucket does not exist"
    if isinstance(err, PermissionError) or any(k in low for k in ("invalidaccesskeyid", "signaturedoesnotmatch",
                                                                  "access denied", "accessdenied", "forbidden",
                                                                  "unable to locate credentials",
                                                                  # gcsfs / google-auth
                                                                  "invalid credentials", "unauthorized",
                                                                  "invalid_grant", "credentials were not found",
                                                                  "defaultcredentialserror", "does not have storage.")):
        return f"access refused, check the credentials ({text[:200]})"
    if "connect" in name.lower() or "could not connect" in low or "connection" in low:
        return f"the endpoint cannot be reached ({text[:200]})"
    return f"{name}: {text[:200]}"


@contextlib.contextmanager
def store_errors(url: str, what: str = "") -> Iterator[None]:
    """Turn any error of the store below into one :class:`StoreError` line naming ``url``
    (fpload's own errors pass through)."""
    try:
        yield
    except FploadError:
        raise
    except FileNotFoundError as err:
        reason = _reason(err)
        if reason == "the bucket does not exist":
            raise StoreError(f"{url}: {reason}") from None
        raise
    except Exception as err:  # noqa: BLE001 -- boto, aiohttp, gcsfs... each have their own
        raise StoreError(f"{url}{': ' + what if what else ''}: {_reason(err)}") from None


def require_bucket(fs: Any, path: str, url: str) -> None:
    """Raise StoreError when the bucket (first component) of ``path`` does not exist."""
    bucket = path.strip("/").split("/", 1)[0]
    if not bucket:
        return
    with store_errors(url):
        try:
            fs.info(bucket)  # unlike exists(), lets an unreachable endpoint or refused credentials through
        except FileNotFoundError:
            raise StoreError(f"{url}: the bucket {bucket!r} does not exist (or these credentials cannot see it)") from None
