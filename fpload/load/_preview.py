"""``fpload preview``: a grid of samples before and after augmentation, to see what the network sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpload.load._config import LoaderConfig
from fpload.errors import UsageError


def preview_grid(version, out: str | Path, *, split: str = "train", samples: int = 6, draws: int = 3,
                 config: LoaderConfig | None = None, device: str = "cpu", seed: int = 0) -> Path:
    """Write a PNG: one row per sample, the decoded image then ``draws`` augmentations of it
    (epochs 0, 1, ... of the loader's augmentation, keyed by seed, epoch and sample index).

    Example::

        preview_grid("versions/demo", "grid.png", samples=6, draws=3)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fpload.load import Loader

    if samples < 1 or draws < 1:
        raise UsageError(f"samples and draws must be at least 1 (got {samples}, {draws})")
    cfg = config or LoaderConfig()
    base = dict(split=split, batch_size=samples, device=device, shuffle=False, seed=seed,
                last_batch="partial", config=cfg)
    plain_loader = Loader(version, augment=False, **base)
    images, labels, index = next(iter(plain_loader))
    aug_loader = Loader(version, augment=True, **base)
    augmented = []
    for _ in range(draws):
        it = iter(aug_loader)
        x, _, i = next(it)
        for _rest in it:  # finish the epoch so the next draw is the next epoch
            pass
        assert i.tolist() == index.tolist()
        augmented.append(x)
    n = images.shape[0]
    mean, std = cfg.mean, cfg.std

    def to_img(t):
        return np.clip((t[0].cpu().numpy() * std + mean), 0, 1)

    fig, axes = plt.subplots(n, draws + 1, figsize=(2.2 * (draws + 1), 2.2 * n), squeeze=False)
    for r in range(n):
        axes[r, 0].imshow(to_img(images[r]), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(f"#{int(index[r])} label {int(labels[r])}", fontsize=8)
        for c in range(draws):
            axes[r, c + 1].imshow(to_img(augmented[c][r]), cmap="gray", vmin=0, vmax=1)
            if r == 0:
                axes[r, c + 1].set_title(f"augmented, epoch {c}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    backend = cfg.augment.backend if cfg.augment.enabled else "off"
    fig.suptitle(f"{plain_loader.version.name}/{plain_loader.version.id} {split}: "
                 f"before / after augmentation ({backend})", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
