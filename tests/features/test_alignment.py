"""Row i of the cache belongs to sample i: features recomputed from the images the loader returns
(no augmentation, identity normalisation, same-size images) equal the cache's rows by index."""

import numpy as np

from fpload.features import extract_features, open_features
from fpload.load import Loader


def test_rows_match_features_of_loaded_images(same_size):
    cache = open_features(same_size.path)
    feats = {n: cache.load(n) for n in cache.names}
    seen = []
    for split in same_size.counts:
        loader = Loader(same_size.path, split=split, batch_size=4, device="cpu", shuffle=True, seed=3,
                        augment=False, mean=0.0, std=1.0)
        for images, _, index in loader:
            pixels = np.rint(images.numpy()[:, 0] * 255).astype(np.uint8)
            assert pixels.shape[1:] == (48, 40)
            for img, k in zip(pixels, index.tolist()):
                own = extract_features(img)
                for name, value in own.items():
                    np.testing.assert_array_equal(feats[name][k], value, err_msg=f"{name} of row {k}")
                seen.append(k)
    assert sorted(seen) == list(range(cache.samples))


def test_gather_matches_direct_zarr_read(same_size):
    import zarr

    cache = open_features(same_size.path)
    rows = np.array([17, 3, 3, 0, 23])
    direct = zarr.open_array(cache.path / "orientation", mode="r")[...][rows]
    np.testing.assert_array_equal(cache.gather("orientation", rows), direct)
    np.testing.assert_array_equal(cache.load("orientation")[rows], direct)
