"""Labels per split: version numbering or contiguous per split, and the mapping one call away."""

import pyarrow.parquet as pq
import pytest

from fpload.load import Loader


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_split_labels_are_contiguous_and_map_back_to_subject_and_finger(packed, split):
    res = packed["raw"]
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    loader = Loader(res.path, split=split, batch_size=5, device="cpu", augment=False, labels="split")
    table = {r["label"]: r for r in loader.label_table().to_pylist()}
    got = set()
    for _, labels, index in loader:
        for lab, k in zip(labels.tolist(), index.tolist()):
            row, entry = rows[k], table[lab]
            assert (entry["version_label"], entry["subject_id"], entry["finger"]) == \
                   (row["label"], row["subject_id"], row["finger"])
            got.add(lab)
    assert got == set(range(loader.num_classes)) == set(table)
    assert sum(e["samples"] for e in table.values()) == res.counts[split]


def test_version_labels_are_the_default_and_the_table_says_so(packed):
    res = packed["raw"]
    loader = Loader(res.path, split="val", batch_size=5, device="cpu", augment=False)
    table = loader.label_table().to_pylist()
    assert all(e["label"] == e["version_label"] for e in table)
    assert loader.num_classes > max(e["label"] for e in table)  # the version's label count
