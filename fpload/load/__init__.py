"""The loader: a DALI pipeline that streams a dataset version into PyTorch, on GPU or CPU.

Example::

    from fpload.load import Loader
    for images, labels, index in Loader("versions/thumbs", split="train", batch_size=64, device="cpu"):
        ...
"""

from fpload.load._config import AugmentConfig, LoaderConfig, StockAugmentConfig
from fpload.load._geometry import map_minutiae
from fpload.load._loader import Loader, gpu_available
from fpload.load._pipeline import PipelineSpec, build_pipeline

__all__ = ["Loader", "LoaderConfig", "AugmentConfig", "StockAugmentConfig", "gpu_available", "build_pipeline", "PipelineSpec",
           "map_minutiae"]
