"""Shared fixtures: tiny captures, a catalog and packed versions, all made from fpload.testing."""

from __future__ import annotations

import importlib.util
import sys

from pathlib import Path

import pytest

from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.testing import make_captures

# the session's PostgreSQL server (tests/pg_fixture.py): fixtures pg_server, pg_url
_spec = importlib.util.spec_from_file_location("fpload_tests_pg_fixture", Path(__file__).with_name("pg_fixture.py"))
_pg = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pg)
pg_server, pg_url = _pg.pg_server, _pg.pg_url
# the session's local Ray cluster (tests/ray_fixture.py): fixture ray_cluster
_rspec = importlib.util.spec_from_file_location("fpload_tests_ray_fixture", Path(__file__).with_name("ray_fixture.py"))
_rf = sys.modules[_rspec.name] = importlib.util.module_from_spec(_rspec)
_rspec.loader.exec_module(_rf)
ray_cluster = _rf.ray_cluster
# the session's GCS emulator (tests/gcs_fixture.py): fixtures gcs_endpoint, gcs_bucket
_gspec = importlib.util.spec_from_file_location("fpload_tests_gcs_fixture", Path(__file__).with_name("gcs_fixture.py"))
_gf = sys.modules[_gspec.name] = importlib.util.module_from_spec(_gspec)
_gspec.loader.exec_module(_gf)
gcs_endpoint, gcs_bucket = _gf.gcs_endpoint, _gf.gcs_bucket


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def plugin() -> dict:
    """The fpload operator plugin, loaded; a CPU-only one is built first if none is installed
    (`make test` builds the full one during set-up)."""
    from fpload.ops import _plugin

    if not _plugin.plugin_path().exists():
        from fpload.ops._build import build_plugin

        build_plugin(cuda=False)
    return _plugin.load_plugin()


@pytest.fixture(scope="session")
def captures(tmp_path_factory) -> Path:
    """Metadata file of 10 subjects × 2 fingers × 2 impressions, mixed image sizes."""
    return make_captures(tmp_path_factory.mktemp("captures"), subjects=10, fingers=2, impressions=2,
                         size=[(48, 40), (33, 41), (40, 40)], seed=1)


@pytest.fixture()
def catalog(tmp_path, captures):
    """A fresh catalog with the captures ingested (revision 1)."""
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(captures)
    yield cat
    cat.close()


@pytest.fixture(scope="session")
def session_catalog(tmp_path_factory, captures):
    cat = open_catalog(tmp_path_factory.mktemp("cat") / "cat.duckdb")
    cat.ingest(captures)
    yield cat
    cat.close()


@pytest.fixture(scope="session")
def packed(tmp_path_factory, session_catalog):
    """Packs of the session catalog, one per encoding, small shards: ``packed[encoding]`` is a PackResult."""
    from fpload.pack import pack_version

    root = tmp_path_factory.mktemp("versions")
    out = {}
    for enc in ("passthrough", "png", "jpeg", "raw", "raw-lz4"):
        out[enc] = pack_version(session_catalog, out=root, name=enc, where="consent",
                                config=PackConfig(encoding=enc, shard_max_samples=7))
    return out


@pytest.fixture(scope="session", autouse=True)
def _private_stamp_cache(tmp_path_factory):
    """Verified stamps of the loader (fpload.versions._stamp) go to a per-session folder, not ~/.cache."""
    import os

    old = os.environ.get("FPLOAD_CACHE_DIR")
    os.environ["FPLOAD_CACHE_DIR"] = str(tmp_path_factory.mktemp("fpload-cache"))
    yield
    if old is None:
        os.environ.pop("FPLOAD_CACHE_DIR", None)
    else:
        os.environ["FPLOAD_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3-compatible server (moto's ThreadedMotoServer) on 127.0.0.1 and a free port, for the
    whole session; fpload reaches it through s3fs exactly as real S3, with the endpoint in
    ``FSSPEC_S3_ENDPOINT_URL`` and dummy credentials in the ``AWS_*`` variables."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": url}
    with pytest.MonkeyPatch.context() as mp:   # the variables are restored at the end of the session
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture()
def s3_bucket(s3_endpoint):
    """A fresh, empty bucket on the session's S3 server: ``s3://fpload-<random>``."""
    import uuid

    from fpload.versions._store import filesystem

    url = f"s3://fpload-{uuid.uuid4().hex[:12]}"
    fs, path = filesystem(url)
    fs.mkdir(path)
    return url


@pytest.fixture(params=["s3", "gs"])
def store_bucket(request):
    """A fresh, empty bucket on each object store the session serves: ``s3://…`` (moto) and ``gs://…``
    (the GCS emulator); tests taking it run once per store."""
    return request.getfixturevalue({"s3": "s3_bucket", "gs": "gcs_bucket"}[request.param])
