"""A local Ray cluster for the test session: ``ray.init(num_cpus=2)`` on 127.0.0.1, started once.

Tests that use it are marked ``ray`` and kept few and small (each Ray task costs tens of
milliseconds; the cluster's start costs a few seconds once). Without Ray installed they skip on a
developer's machine, naming the extra; in CI (``CI`` set, where the ``test`` extra installs Ray) a
missing Ray is an error, never a skip.

Example::

    @pytest.mark.ray
    def test_x(ray_cluster):      # pack_version(..., engine="ray") runs on it
        ...
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster(s3_endpoint):
    """The session's local Ray cluster (2 CPUs, no dashboard), shut down at the end; yields ``ray``.

    Started after the session's S3 server (``s3_endpoint``, tests/conftest.py) so that its nodes'
    environment holds that store's endpoint and credentials, as a real cluster's nodes do: Ray
    tasks of an ``s3://`` pack write their shards to the store with those."""
    try:
        import ray
    except ImportError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Ray is not installed ({err}): pip install 'fpload[ray]'; CI runs these tests")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="ERROR",
                 log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
