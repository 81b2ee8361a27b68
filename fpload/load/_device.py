"""What the loader asks of the machine: the torch.distributed rank, a visible GPU, free host
memory, and the informative line of a DALI error."""

from __future__ import annotations


def _dist_rank_world() -> tuple[int, int]:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _dali_message(err: Exception) -> str:
    """The informative line of a DALI pipeline error (which names the operator's own message and
    the failing sample's source, e.g. ``shards/train-000000.tar:512:<key>.lz4``)."""
    import re

    text = str(err)
    m = re.search(r'Assert on ".*?" failed: (.+)', text)
    if m:
        return m.group(1).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "encountered:" in lines and lines.index("encountered:") + 1 < len(lines):
        return lines[lines.index("encountered:") + 1]
    useful = [ln for ln in lines if not ln.startswith("Critical error") and "no longer valid" not in ln]
    return (useful or lines or [type(err).__name__])[0]


def gpu_available() -> bool:
    """Whether a CUDA GPU is visible to torch (DALI's GPU placement needs the same)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def _available_host_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        return None
    return None


def check_rank_device(local_rank: int | None, current: int, count: int) -> None:
    """The DDP habit: a process of local rank k builds its GPU loader after
    ``torch.cuda.set_device(k)``. Raises DeviceError when the current device is another one
    (every rank would load onto the same GPU). ``local_rank`` None (no ``LOCAL_RANK``, as outside
    ``torchrun``) checks nothing; with fewer devices than local ranks, k maps to ``k % count``.

    >>> check_rank_device(None, 0, 8); check_rank_device(3, 3, 8)
    """
    from fpload.errors import DeviceError

    if local_rank is None or count < 1:
        return
    want = local_rank % count
    if current != want:
        raise DeviceError(f"LOCAL_RANK={local_rank} but the current CUDA device is cuda:{current}: call "
                          f"torch.cuda.set_device({want}) before building this rank's GPU loader")
