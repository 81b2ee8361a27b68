"""Minutiae at load time: the per-sample warp transform and mapping points into augmented images."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from fpload.catalog import open_catalog
from fpload.errors import UsageError
from fpload.load import AugmentConfig, Loader, map_minutiae
from fpload.load._geometry import crop_anchor, output_points, source_points, warp_transforms
from fpload.ops import AugmentOps
from fpload.ops import _reference as ref
from fpload.ops._config import OcclusionOps, PhotometricOps, WarpOps
from fpload.pack import PackConfig, pack_version
from fpload.features import FeaturesConfig

pytestmark = pytest.mark.usefixtures("plugin")

SIZE = 96
WARP = WarpOps(angle=(-35.0, 35.0), scale=(0.85, 1.15), translate=(8.0, 8.0), distortion=4.0, grid=4)


def _dots(rng: np.random.Generator, h: int, w: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((h, w), 255, np.uint8)
    pts = np.zeros((0, 2), np.int64)
    while len(pts) < n:  # dots at least 12 px apart, so each one's neighbourhood holds only it
        p = np.array([rng.integers(22, w - 22), rng.integers(22, h - 22)])
        if not len(pts) or np.hypot(*(pts - p).T).min() >= 12:
            pts = np.vstack([pts, p])
    for x, y in pts:
        img[y - 1:y + 2, x - 1:x + 2] = 0
    return img, pts.astype(np.float64)


@pytest.fixture(scope="module")
def dot_version(tmp_path_factory):
    """White images with black 3×3 dots at known places (mixed sizes: crops and pads too)."""
    root = tmp_path_factory.mktemp("dots")
    (root / "caps" / "images").mkdir(parents=True)
    rng = np.random.default_rng(4)
    rows, truth = [], {}
    for s in range(4):
        for i in range(3):
            h, w = [(96, 96), (90, 101), (103, 92)][(s + i) % 3]
            img, pts = _dots(rng, h, w)
            name = f"images/s{s}_i{i}.png"
            Image.fromarray(img).save(root / "caps" / name)
            truth[name] = pts
            rows.append({"file": name, "subject_id": f"S{s}", "finger": 1, "impression": i, "sensor": "dots",
                         "ppi": 500, "consent": True, "synthetic": True})
    (root / "caps" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(root / "caps" / "metadata.jsonl")
    res = pack_version(cat, out=root / "v", name="dots", where="consent",
                       config=PackConfig(encoding="raw", features=FeaturesConfig(enabled=False)))
    cat.close()
    uris = [r["uri"] for r in pq.read_table(res.path / "samples.parquet").to_pylist()]
    return res, [truth[next(k for k in truth if u.endswith(k))] for u in uris]


def _blob_centre(img: np.ndarray, x: float, y: float, r: int = 4) -> tuple[float, float] | None:
    xi, yi = int(round(x)), int(round(y))
    y0, y1, x0, x1 = max(0, yi - r), min(img.shape[0], yi + r + 1), max(0, xi - r), min(img.shape[1], xi + r + 1)
    wt = np.maximum(0.0, 200.0 - img[y0:y1, x0:x1].astype(np.float64))
    if wt.sum() == 0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return float((wt * xx).sum() / wt.sum()), float((wt * yy).sum() / wt.sum())


@pytest.mark.parametrize("center_mode", ["foreground", "image"])
def test_mapped_points_land_on_the_augmented_dots(dot_version, center_mode):
    res, truth = dot_version
    ops = AugmentOps(warp=WARP.model_copy(update={"center_mode": center_mode}), occlusion=OcclusionOps(enabled=False),
                     photometric=PhotometricOps(enabled=False))
    checked = moved = 0
    for split in res.counts:
        loader = Loader(res.path, split=split, batch_size=3, device="cpu", seed=9, augment=ops,
                        image_size=(SIZE, SIZE), output="uint8", features=["warp_matrix", "warp_grid"])
        for epoch in range(2):
            for images, _, index, f in loader:
                assert set(f) == {"warp_matrix", "warp_grid"} and f["warp_matrix"].shape == (len(index), 2, 3)
                k = max(len(truth[int(i)]) for i in index)
                mins = torch.zeros(len(index), k, 4)
                for b, i in enumerate(index.tolist()):
                    mins[b, :len(truth[i]), :2] = torch.from_numpy(truth[i])
                mapped, inside = map_minutiae(mins, f["warp_matrix"], f["warp_grid"], images.shape[-2:])
                assert isinstance(mapped, torch.Tensor) and mapped.shape == mins.shape
                for b, i in enumerate(index.tolist()):
                    img = images[b, 0].numpy()
                    for j in range(len(truth[i])):
                        x, y = mapped[b, j, :2].tolist()
                        if not (4 <= x < SIZE - 4 and 4 <= y < SIZE - 4):
                            continue
                        assert bool(inside[b, j])
                        got = _blob_centre(img, x, y)
                        assert got is not None, (epoch, i, j)
                        assert np.hypot(got[0] - x, got[1] - y) < 1.0, (epoch, i, j, got, (x, y))
                        checked += 1
                        moved += np.hypot(*(truth[i][j] - (x, y))) > 3
    assert checked > 60 and moved > checked // 2  # the warp really moved the dots


def test_no_augmentation_gives_the_crop_offset(dot_version):
    res, _ = dot_version
    loader = Loader(res.path, split=next(iter(res.counts)), batch_size=4, device="cpu", augment=False,
                    image_size=(SIZE, SIZE), features=["warp_grid", "warp_matrix"])
    samples = pq.read_table(res.path / "samples.parquet").to_pylist()
    for _, _, index, f in loader:
        assert list(f) == ["warp_grid", "warp_matrix"]
        for b, i in enumerate(index.tolist()):
            h, w = samples[i]["height"], samples[i]["width"]
            want = [[1, 0, crop_anchor(w, SIZE)], [0, 1, crop_anchor(h, SIZE)]]
            assert f["warp_matrix"][b].tolist() == want and not f["warp_grid"][b].any()


def test_stock_backend_cannot_give_transforms(dot_version):
    res, _ = dot_version
    with pytest.raises(UsageError, match="backend: fpload"):
        Loader(res.path, split=next(iter(res.counts)), batch_size=2, device="cpu",
               augment=AugmentConfig(backend="stock"), features=["warp_matrix"])


@given(st.integers(0, 2**40), st.integers(0, 5), st.floats(0, 6), st.sampled_from([2, 4, 6]),
       st.integers(70, 120), st.integers(70, 120))
@example(seed=68, epoch=0, distortion=6.0, grid=6, h=70, w=70)
@settings(max_examples=25, deadline=None)
def test_inverse_map_undoes_the_operators_map(seed, epoch, distortion, grid, h, w):
    """output_points ∘ source_points = id, and source_points is where the reference warp samples."""
    warp = WARP.model_copy(update={"distortion": distortion, "grid": grid, "center_mode": "image"})
    mats, grids = warp_transforms(np.array([seed % 1000]), epoch, seed=seed, warp=warp, stored=np.array([[h, w]]),
                                  in_size=(SIZE, SIZE), centers=None)
    rng = np.random.default_rng(seed % 2**32)
    o = rng.uniform(10, SIZE - 10, (20, 2))
    src = source_points(o, mats[0], grids[0], (SIZE, SIZE))
    np.testing.assert_allclose(output_points(src, mats[0], grids[0], (SIZE, SIZE)), o, atol=1e-3)
    # a bright 3×3 dot of a stored image appears where the inverse map says, on the reference warp
    mats, grids = warp_transforms(np.array([seed % 1000]), epoch, seed=seed, warp=warp,
                                  stored=np.array([[SIZE, SIZE]]), in_size=(SIZE, SIZE), centers=None)
    x, y = 30 + seed % 37, 30 + (seed // 37) % 37
    img = np.zeros((SIZE, SIZE, 1), np.uint8)
    img[y - 1:y + 2, x - 1:x + 2] = 255
    out = ref.warp([img], [seed % 1000], epoch, seed,
                   **warp.model_copy(update={"fill": 0.0}).op_kwargs())[0][..., 0].astype(np.float64)
    p = output_points(np.array([[x, y]]), mats[0], grids[0], (SIZE, SIZE))[0]
    if 5 < p[0] < SIZE - 5 and 5 < p[1] < SIZE - 5:
        # the mapped point lies on the warped dot, always
        assert out[int(round(p[1])), int(round(p[0]))] >= 0.25 * out.max()
        bright = int((out >= 0.25 * out.max()).sum())
        if bright <= 18:  # a compact dot: its centre is where the map says. At the strongest
            # distortion on a fine grid the warp nearly folds and smears the dot into a streak
            # (seed=68, distortion=6, grid=6), whose intensity centroid is not the image of its centre
            yy, xx = np.mgrid[:SIZE, :SIZE]
            c = np.array([(out * xx).sum(), (out * yy).sum()]) / out.sum()
            assert np.hypot(*(c - p)) < 0.75


def test_mapped_synthetic_minutiae_land_on_the_augmented_ridge_endings(tmp_path):
    """Ground truth of synthetic impressions, mapped with the batch's transform, is where LEADER
    finds minutiae in the augmented images (and the unmapped truth is not)."""
    from fpload.features._pyfing import import_pyfing

    try:
        import_pyfing()
    except Exception as err:  # noqa: BLE001 - the extra is not installed here
        pytest.skip(f"needs the fpload[pyfing] extra ({err})")
    from fpload.features._validate import detect, recovery
    from fpload.synth import synthesize

    syn = synthesize(tmp_path / "synth", subjects=2, fingers=1, impressions=2, size=256, progress=False, workers=1)
    truth_of = {json.loads(line)["file"]: json.loads(line)["minutiae"]
                for line in syn.metadata_path.read_text().splitlines()}
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(syn.metadata_path)
    res = pack_version(cat, out=tmp_path / "v", name="syn", where="consent", workers=1,
                       config=PackConfig(encoding="raw", features=FeaturesConfig(extractors=["pyfing.minutiae"])))
    cat.close()
    uris = [r["uri"] for r in pq.read_table(res.path / "samples.parquet").to_pylist()]
    truth = [truth_of[next(k for k in truth_of if u.endswith(k))] for u in uris]
    ops = AugmentOps(warp=WarpOps(angle=(-30.0, 30.0), scale=(0.95, 1.05), translate=(10.0, 10.0), distortion=3.0),
                     occlusion=OcclusionOps(enabled=False), photometric=PhotometricOps(enabled=False))
    images, mapped_truth, plain_truth, cached = [], [], [], []
    for split in res.counts:
        loader = Loader(res.path, split=split, batch_size=2, device="cpu", seed=3, augment=ops, output="uint8",
                        features=["minutiae", "minutiae_count", "warp_matrix", "warp_grid"])
        for x, _, index, f in loader:
            n = int(f["minutiae"].shape[1])
            assert f["minutiae"].shape == (len(index), 128, 4) and f["minutiae_count"].dtype == torch.int32
            for b, i in enumerate(index.tolist()):
                t = np.zeros((1, max(1, len(truth[i])), 4), np.float32)
                t[0, :len(truth[i])] = [[m[0], m[1], m[2], 1 if m[3] == "ending" else 2] for m in truth[i]]
                m_t, in_t = map_minutiae(t, f["warp_matrix"][b:b + 1], f["warp_grid"][b:b + 1], x.shape[-2:])
                keep = in_t[0, :len(truth[i])]
                mapped_truth.append([tuple(r) for r in m_t[0, :len(truth[i])][keep]])
                plain_truth.append([tuple(r) for r in t[0, :len(truth[i])][keep]])
                m_c, in_c = map_minutiae(f["minutiae"][b:b + 1], f["warp_matrix"][b:b + 1], f["warp_grid"][b:b + 1],
                                         x.shape[-2:])
                count = int(f["minutiae_count"][b])
                assert count <= n and not f["minutiae"][b, count:].any()
                cached.append(m_c[0, :count][in_c[0, :count]].numpy())
                images.append(x[b, 0].numpy())
    found = detect(images)
    kinds = {1: "ending", 2: "bifurcation"}
    as_truth = [[(r[0], r[1], r[2], kinds[int(r[3])]) for r in rows] for rows in mapped_truth]
    mapped = recovery(found, as_truth)
    unmapped = recovery(found, [[(r[0], r[1], r[2], kinds[int(r[3])]) for r in rows] for rows in plain_truth])
    assert mapped["truth"] > 40 and mapped["recovery"] > 0.5, mapped
    assert unmapped["recovery"] < mapped["recovery"] / 3, (mapped, unmapped)
    # the cached (unaugmented-frame) LEADER minutiae, mapped, are what LEADER finds after the warp
    again = recovery(found, [[(r[0], r[1], r[2], kinds[int(r[3])]) for r in c] for c in cached])
    assert again["recovery"] > 0.6, again
