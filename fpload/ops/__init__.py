"""fpload's DALI operators (csrc/): plugin build and loading, pipeline wrappers, NumPy references.

Example::

    from fpload.ops import AugmentOps, augment, load_plugin

    load_plugin()                      # once; PluginError if missing or built for another DALI
    # inside a DALI pipeline definition:
    # out = augment(images, sample_idx=idx, epoch=ep, config=AugmentOps(), seed=0, device="cpu")

Build the plugin first with ``fpload ops build`` (or ``python -m fpload.ops build``).
"""

from fpload.ops._augment import augment
from fpload.ops._config import AugmentOps, OcclusionOps, OutputOps, PhotometricOps, WarpOps
from fpload.ops._plugin import load_plugin, plugin_info, plugin_path, require_gpu_backend


def build_plugin(**kwargs):  # noqa: ANN003, ANN201 - thin lazy re-export
    """Build and install the plugin; see :func:`fpload.ops._build.build_plugin`."""
    from fpload.ops._build import build_plugin as _build_plugin

    return _build_plugin(**kwargs)


__all__ = [
    "AugmentOps", "OcclusionOps", "OutputOps", "PhotometricOps", "WarpOps",
    "augment", "build_plugin", "load_plugin", "plugin_info", "plugin_path", "require_gpu_backend",
]
