"""Per-sample feature caches (features.zarr), computed at pack time and joined at load time."""
