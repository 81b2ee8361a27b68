"""The packer: a catalog query frozen into an immutable, content-addressed dataset version.

Example::

    from fpload.catalog import open_catalog
    from fpload.pack import PackConfig, pack_version

    res = pack_version(open_catalog("catalog.duckdb"), where="consent", out="versions",
                       name="all", config=PackConfig(encoding="png"), workers=2)
    res.path        # versions/all/<version_id>

    # later, with 1 % new samples: features of the others are copied from the parent's cache
    res2 = pack_version(cat, where="consent", out="versions", name="all", parent="latest", workers=2)
    res2.features_computed, res2.features_reused
"""

from fpload.pack._config import PackConfig
from fpload.pack._packer import PackResult, pack_version
from fpload.pack._plan import PackPlan, plan_version, subject_fraction
from fpload.pack._shard import ShardInfo, ShardWriter

__all__ = ["PackConfig", "pack_version", "PackResult", "PackPlan", "plan_version", "subject_fraction",
           "ShardWriter", "ShardInfo"]
