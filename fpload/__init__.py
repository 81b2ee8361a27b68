"""fpload: manage and load fingerprint-recognition training data.

The data flow, one package per stage:

- :mod:`fpload.catalog` — samples and metadata in a revisioned DuckDB catalog, queried with SQL;
- :mod:`fpload.pack` — a catalog query frozen into an immutable, content-addressed dataset version;
- :mod:`fpload.versions` — list, show and verify published versions;
- :mod:`fpload.load` — a DALI pipeline that streams a version into PyTorch, on GPU or CPU;
- :mod:`fpload.synth` — synthetic fingerprints, the embedded default data.

Example::

    from fpload.catalog import open_catalog
    from fpload.pack import pack_version
    from fpload.load import Loader

    cat = open_catalog("catalog.duckdb")
    cat.ingest("captures/metadata.csv")
    version = pack_version(cat, where="finger IN (2, 7) AND consent", out="versions", name="thumbs")
    for images, labels, index in Loader(version, split="train", batch_size=64, device="cpu"):
        ...
"""

__version__ = "0.1.0"
