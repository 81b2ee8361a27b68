"""``fpload demo``: the whole path on synthetic fingerprints, in one command.

synthesise → ingest into a catalog → pack a version → verify it → load it with DALI → train a
small CNN on the identity label for a few steps. Everything lands under one folder; a rerun
reuses what is there (ingest and pack are idempotent).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from fpload.config import env_workers, resolve_config

from fpload.load import LoaderConfig

from fpload.pack import PackConfig

def _pack_config() -> PackConfig:
    """The bundled ``configs/pack/demo.yaml`` (shipped in the package)."""
    return PackConfig.from_yaml(resolve_config("demo", "pack"))


def _loader_config() -> LoaderConfig:
    """The bundled ``configs/loader/train.yaml`` (shipped in the package)."""
    return LoaderConfig.from_yaml(resolve_config("train", "loader"))


def make_data(out: Path, subjects: int, console: Console) -> Path:
    """Synthetic fingerprints (fpload.synth) for the demo; returns the metadata file."""
    from fpload.synth import synthesize

    res = synthesize(out, subjects=subjects, fingers=2, impressions=4, seed=0, size=256,
                     workers=env_workers(), progress=True)
    return res.metadata_path


def small_cnn(classes: int):
    """A small CNN for N×1×H×W fingerprint batches."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def run_demo(out: str | Path, *, subjects: int = 24, steps: int = 30, device: str = "auto",
             console: Console | None = None) -> dict:
    """Run the demo; returns its figures (paths, version id, samples/s)."""
    import torch

    from fpload.catalog import open_catalog
    from fpload.features import open_features
    from fpload.load import Loader
    from fpload.ops import plugin_info
    from fpload.pack import pack_version
    from fpload.versions import verify_version

    console = console or Console()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    say = console.print

    say(f"[bold]1. synthesise[/] {subjects} subjects × 2 fingers × 4 impressions → {out / 'captures'}")
    t = time.perf_counter()
    meta = make_data(out / "captures", subjects, console)
    say(f"   {meta} ({time.perf_counter() - t:.1f} s)")

    cat_path = out / "catalog.duckdb"
    with open_catalog(cat_path) as cat:
        rep = cat.ingest(meta, workers=env_workers(), progress=True)
        say(f"[bold]2. ingest[/] → {cat_path}: " + (f"revision {rep.revision}, {rep.added} samples added"
            if rep.revision else f"already catalogued (revision {cat.head})"))
        where = "consent AND synthetic"
        res = pack_version(cat, out=out / "versions", name="demo", where=where, config=_pack_config(),
                           workers=env_workers(), progress=True)
    say(f"[bold]3. pack[/] --where \"{where}\" → {res.path}\n   {res.samples} samples "
        f"({', '.join(f'{k} {v}' for k, v in res.counts.items())}), {res.bytes / 1e6:.1f} MB"
        + ("" if res.created else " (already published)"))
    cache = open_features(res.path)
    quality = cache.load("quality")
    say(f"   features.zarr: {', '.join(cache.names)}; quality proxy "
        f"{quality.min():.0f}–{quality.max():.0f} (mean {quality.mean():.0f})")

    problems = verify_version(res.path)
    say(f"[bold]4. verify[/] {'all shards match the manifest' if not problems else problems}")

    cfg = _loader_config()
    loader = Loader(res.path, split="train", config=cfg, device=device)
    say(f"[bold]5. load[/] {loader}")
    if cfg.augment.enabled and cfg.augment.backend == "fpload":
        plugin = plugin_info()
        say(f"   augmentation: fpload operators {'(loaded)' if plugin['loaded'] else '(NOT loaded)'}: "
            f"fpload_warp, fpload_occlusion, fpload_photometric from {plugin['path']}")
    else:
        say(f"   augmentation: {'DALI stock operators' if cfg.augment.enabled else 'off'}")
    t = time.perf_counter()
    per_epoch = sum(images.shape[0] for images, _, _ in loader)  # epoch 1: includes pipeline start-up
    first_epoch_s = time.perf_counter() - t
    t = time.perf_counter()
    n = sum(images.shape[0] for _ in range(5) for images, _, _ in loader)  # epochs 2-6: steady state
    load_rate = n / (time.perf_counter() - t)
    say(f"   {per_epoch} samples per epoch; first epoch {first_epoch_s:.1f} s (with start-up), then "
        f"loader alone [bold]{load_rate:.0f} samples/s[/] on {loader.device} (5 epochs)")

    torch.manual_seed(0)
    torch_device = "cuda" if loader.device == "gpu" else "cpu"
    model = small_cnn(loader.num_classes).to(torch_device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    lossf = torch.nn.CrossEntropyLoss()
    losses, seen, step = [], 0, 0
    t = time.perf_counter()
    while step < steps:
        for images, labels, _ in loader:
            loss = lossf(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            seen += images.shape[0]
            step += 1
            if step >= steps:
                break
    train_rate = seen / (time.perf_counter() - t)
    say(f"[bold]6. train[/] small CNN, {loader.num_classes} identities, {steps} steps: loss "
        f"{losses[0]:.2f} → {sum(losses[-5:]) / len(losses[-5:]):.2f} (mean of last 5), "
        f"{train_rate:.0f} samples/s with training")
    say(f"\n[bold green]done.[/] catalog {cat_path}\n      version {res.path}\n"
        f"      loader {load_rate:.0f} samples/s ({loader.device}), training {train_rate:.0f} samples/s")
    return {"catalog": str(cat_path), "version": str(res.path), "version_id": res.version_id,
            "loader_samples_per_s": load_rate, "train_samples_per_s": train_rate,
            "loss_first": losses[0], "loss_last": losses[-1], "device": loader.device}
