"""``catalog ingest --engine ray``: the images are read, checked and hashed by Ray tasks, in batches.

Only the costly part moves: :func:`fpload.catalog._image.probe_image` (read a regular file
within the size limit, decode and check its pixels, hash its bytes) runs on the cluster, one
task per :data:`BATCH` images; the driver parses the metadata before and checks conflicts and
commits the one revision after, exactly as a local ingest, so the revision (rows, digest) is the
same. A bad image fails its task with the same one-line :class:`~fpload.errors.ImageError`
naming the file, and nothing is committed. Every node must see the images at the paths the
metadata gives (a shared filesystem) or reach the same object store.

Example::

    infos = list(iter_probed_ray(["/data/a.png", "/data/b.png"], ImageLimits(), address="auto"))
"""

from __future__ import annotations

from typing import Any, Iterator

from fpload.catalog._image import ImageLimits, probe_image

#: images probed per Ray task (a task costs a few milliseconds of scheduling)
BATCH = 128


def _probe_batch(uris: list[str], limits: ImageLimits | None) -> list[dict[str, Any]]:
    """Probe a batch of images in a Ray worker, in order."""
    return [probe_image(u, limits) for u in uris]


def iter_probed_ray(uris: list[str], limits: ImageLimits | None = None, address: str | None = None,
                    batch: int | None = None) -> Iterator[dict[str, Any]]:
    """What :func:`fpload.catalog._ingest.iter_probed` yields (one dict per image, in input order),
    probed by Ray tasks of ``batch`` (default :data:`BATCH`) images on the cluster at ``address``
    (see :func:`fpload._ray.connect`)."""
    from fpload import _ray

    batch = batch or BATCH
    ray = _ray.connect(address)
    task = _ray.remote(_probe_batch)
    batches = ((uris[i:i + batch], limits) for i in range(0, len(uris), batch))
    for infos in _ray.ordered_map(task, batches, 2 * _ray.cluster_cpus(ray), "image batch"):
        yield from infos
