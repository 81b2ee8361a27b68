"""A GCS-compatible server for the test session: gcp-storage-emulator, in process, on 127.0.0.1.

fpload reaches it through gcsfs exactly as real GCS, with the endpoint in ``STORAGE_EMULATOR_HOST``
(gcsfs reads it) and anonymous access (``FSSPEC_GS_TOKEN=anon``). gcsfs's experimental gRPC layer
(zonal/HNS bucket probing, ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT``) is switched off: the emulator
speaks only the JSON API, and the probe would retry for about a minute per bucket.

Without the emulator or gcsfs installed the tests skip on a developer's machine, naming the extra;
in CI (``CI`` set, where the ``test`` extra installs both) that is an error, never a skip.

Example::

    def test_x(gcs_bucket):          # "gs://fpload-1a2b3c4d5e6f", fresh and empty
        pack_version(cat, out=f"{gcs_bucket}/versions", ...)
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_endpoint():
    """The session's GCS emulator; yields its URL (``http://127.0.0.1:PORT``), with the variables above set."""
    env = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false", "FSSPEC_GS_TOKEN": "anon"}
    with pytest.MonkeyPatch.context() as mp:   # the variables are restored however the fixture ends
        for k, v in env.items():  # before gcsfs is first imported: it picks its file system class at import
            mp.setenv(k, v)
        try:
            import fsspec
            import gcsfs
            from gcp_storage_emulator.server import create_server
        except ImportError as err:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"gcsfs or gcp-storage-emulator is not installed ({err}): pip install 'fpload[test]'; "
                        "CI runs these tests")
        # gcsfs imported earlier in this process (with the gRPC layer on): use its plain JSON-API class
        fsspec.register_implementation("gs", gcsfs.core.GCSFileSystem, clobber=True)
        fsspec.register_implementation("gcs", gcsfs.core.GCSFileSystem, clobber=True)
        logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
        port = _free_port()
        server = create_server("127.0.0.1", port, in_memory=True)
        server.start()
        httpd = getattr(getattr(server, "_api", None), "_httpd", None)
        if httpd is not None:  # a client closing early (a 404 body unread) is not an error of the test
            httpd.handle_error = lambda request, address: None
        url = f"http://127.0.0.1:{port}"
        mp.setenv("STORAGE_EMULATOR_HOST", url)
        gcsfs.GCSFileSystem.clear_instance_cache()
        try:
            yield url
        finally:
            server.stop()
            gcsfs.GCSFileSystem.clear_instance_cache()


@pytest.fixture()
def gcs_bucket(gcs_endpoint):
    """A fresh, empty bucket on the session's GCS emulator: ``gs://fpload-<random>``."""
    from fpload.versions._store import filesystem

    url = f"gs://fpload-{uuid.uuid4().hex[:12]}"
    fs, path = filesystem(url)
    fs.mkdir(path)
    return url
