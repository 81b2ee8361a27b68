"""Per-sample feature caches (``features.zarr``), computed at pack time and joined at load time.

The packer runs the extractors of the pack config's ``features:`` key in its encode workers, in
the same pass as the shards, and writes one Zarr v3 array per feature whose row i belongs to
sample i (``samples.parquet`` row i); features of samples a parent version, any other checked
version under the same root (:mod:`fpload.features._reuse`) or the catalog's ingest-time store
(:mod:`fpload.features._store`) already holds are copied, not recomputed. Readers open a cache with :func:`open_features`, which checks it
against the manifest.

Example::

    from fpload.features import open_features

    cache = open_features("versions/thumbs")          # latest version of that name
    cache.names              # ['foreground', 'frequency', 'orientation', 'quality', 'thumbnail']
    quality = cache.load("quality")                   # float32 [N], whole array in memory
    cache.spec("orientation")                         # extractor, version, params, shape, dtype
    cache.sample_ids                                  # hex str [N], as in samples.parquet

Without fpload, row i of the ``sample_id`` array (``uint8 [N, 16]``, schema 2) is sample i's id
as bytes: ``bytes(zarr.open_group(path)["sample_id"][i]).hex()``.

The built-in quality score is an NFIQ-inspired proxy, **not NFIQ 2** (see
:mod:`fpload.features._builtin`).

With the ``fpload[pyfing]`` extra the field's reference estimators are extractors too:
``pyfing.segmentation``, ``pyfing.orientation``, ``pyfing.frequency`` (``method: classical`` or
``deep``) and ``pyfing.minutiae`` (LEADER; padded ``minutiae [N, K, 4]`` and ``minutiae_count``),
see :mod:`fpload.features._pyfing`; :func:`pyfing_recovery` scores LEADER against synthetic truth.
"""

from fpload.features._builtin import BUILTINS
from fpload.features._cache import (FeatureCache, FeatureSpec, open_features, rows_to_sample_ids,
                                    sample_ids_to_rows)
from fpload.features._config import DEFAULT_EXTRACTORS, ExtractorSpec, FeaturesConfig
from fpload.features._extract import (ENTRY_POINT_GROUP, Extractor, FeatureJob, extract_features,
                                      resolve_extractors, run_extractors, run_extractors_many,
                                      batches_deep)
from fpload.features._pyfing import PYFING_EXTRACTORS
from fpload.features._validate import match_minutiae, minutiae_density, pyfing_recovery
from fpload.features._writer import FeatureWriter

__all__ = ["open_features", "FeatureCache", "FeatureSpec", "FeaturesConfig", "ExtractorSpec",
           "DEFAULT_EXTRACTORS", "BUILTINS", "ENTRY_POINT_GROUP", "Extractor", "FeatureJob",
           "extract_features", "resolve_extractors", "run_extractors", "run_extractors_many", "FeatureWriter",
           "batches_deep",
           "import_to_catalog", "sample_ids_to_rows", "rows_to_sample_ids", "PYFING_EXTRACTORS",
           "pyfing_recovery", "minutiae_density", "match_minutiae"]


def import_to_catalog(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - thin lazy re-export
    """Write a scalar feature into a catalog column; see :func:`fpload.features._import.import_to_catalog`."""
    from fpload.features._import import import_to_catalog as _impl

    return _impl(*args, **kwargs)
