"""Deep pyfing methods on many images per forward pass.

A pack's encode worker decodes a chunk of samples (16), then runs each deep pyfing extractor
(SUFS, SNFOE, SNFFE, LEADER) over the chunk stage by stage, ``batch_size`` images per forward pass
of the Keras model; the per-sample extractors then find the results in each image's memo.

Exactness: every image goes through pyfing's own ``run`` (its resizing to the network's dpi, its
padding to a multiple of the network's size and its cropping back), twice: once to capture the
network input it builds, once to hand it its row of the batched output. Images are batched only
with images whose network input has the same shape, so each image's input tensor is the one a
one-at-a-time run feeds the network; nothing is padded further. What can differ is the
arithmetic of the batched convolution (another summation order), a few float32 ulps, which the
thresholds of SUFS (0.5) and LEADER (minutia quality 0.6, type 0.5) can turn into one pixel or one
minutia of difference only when a value lies within those ulps of a threshold.

Failures are left to the one-at-a-time path: an image whose capture or whose batch fails is not
filled in, so the per-sample run recomputes it and reports the error with its sample id.
Keras (torch backend) places the model on the GPU when torch sees one (``cuda``), else on the CPU.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from fpload.features._builtin import ImageAnalysis
from fpload.features._pyfing import _CHAINS, _algorithm, _call, _memo_key, _no_grad, _run

#: the batch size of ``batch_size: auto`` on a GPU (one chunk of the pack's encode workers); on a
#: CPU ``auto`` is 1, the one-at-a-time path
GPU_BATCH = 16


def effective_batch(batch_size: int | None) -> int:
    """``batch_size`` as given, or for ``None`` (auto) :data:`GPU_BATCH` when torch sees a CUDA
    device and 1 otherwise.

    >>> effective_batch(4)
    4
    """
    if batch_size is not None:
        return int(batch_size)
    import torch

    return GPU_BATCH if torch.cuda.is_available() else 1


class _Captured(Exception):
    def __init__(self, x: np.ndarray):
        super().__init__("captured")
        self.x = x


class _Capture:
    """A stand-in model that stops pyfing's ``run`` at the forward pass, keeping its input."""

    def __call__(self, x: Any, training: bool = False) -> Any:
        raise _Captured(np.asarray(x))


class _Replay:
    """A stand-in model that returns one image's row of a batched output."""

    def __init__(self, out: np.ndarray):
        self.out = out

    def __call__(self, x: Any, training: bool = False) -> "_Replay":
        return self

    def numpy(self) -> np.ndarray:
        return self.out


def _with_model(algorithm: Any, model: Any) -> Any:
    clone = copy.copy(algorithm)
    clone.model = model
    return clone


def run_batched(alg: str, params: dict[str, Any], dpi: int, items: list[tuple[ImageAnalysis, tuple]],
                batch_size: int) -> None:
    """Fill each analysis' memo with deep algorithm ``alg`` on its image (``inputs`` after the
    image, as :func:`fpload.features._pyfing._run` takes them), ``batch_size`` images per forward pass."""
    key = _memo_key(alg, params, dpi)
    algorithm = _algorithm(alg, key[2])
    capture = _with_model(algorithm, _Capture())
    captured: list[tuple[ImageAnalysis, tuple, np.ndarray]] = []
    for an, inputs in items:
        if key in an._memo:
            continue
        try:
            an._memo[key] = _call(capture, alg, an.image, dpi, *inputs)  # pyfing did not call the model
        except _Captured as c:
            captured.append((an, inputs, c.x))
        except Exception:  # noqa: BLE001 - the one-at-a-time path reports it, naming the sample
            continue
    groups: dict[tuple, list[int]] = {}
    for i, (_, _, x) in enumerate(captured):
        groups.setdefault((x.shape, x.dtype.str), []).append(i)
    for idx in groups.values():
        for start in range(0, len(idx), max(1, batch_size)):
            part = idx[start:start + max(1, batch_size)]
            try:
                with _no_grad():
                    out = algorithm.model(np.concatenate([captured[i][2] for i in part]), training=False).numpy()
            except Exception:  # noqa: BLE001 - e.g. out of device memory: one at a time instead
                continue
            for j, i in enumerate(part):
                an, inputs, _ = captured[i]
                try:
                    an._memo[key] = _call(_with_model(algorithm, _Replay(out[j:j + 1])), alg, an.image, dpi, *inputs)
                except Exception:  # noqa: BLE001 - as above
                    continue


def prefill(analyses: list[ImageAnalysis], params: dict[str, Any], step: str, batch_size: int) -> None:
    """Run a deep extractor's chain (its resolved ``params``, its ``step``) over many images,
    batched, into their memos; classical methods have no network and are left as they are."""
    if params.get("method") != "deep" or not analyses:
        return
    algs, dpi = params["algorithms"], int(params["dpi"])
    if step == "minutiae":
        run_batched("LEADER", algs, dpi, [(an, ()) for an in analyses], batch_size)
        return
    seg, ori, freq = _CHAINS["frequency"]["deep"]
    run_batched(seg, algs, dpi, [(an, ()) for an in analyses], batch_size)
    if step == "segmentation":
        return
    live = []
    for an in analyses:
        try:
            mask = _run(an, seg, algs, dpi)
        except Exception:  # noqa: BLE001 - reported by the per-sample path
            continue
        if mask.any():  # as _chain: no orientation or frequency without foreground
            live.append((an, mask))
    run_batched(ori, algs, dpi, [(an, (m,)) for an, m in live], batch_size)
    if step == "orientation":
        return
    items = []
    for an, m in live:
        try:
            items.append((an, (m, _run(an, ori, algs, dpi, m))))
        except Exception:  # noqa: BLE001 - reported by the per-sample path
            continue
    run_batched(freq, algs, dpi, items, batch_size)
