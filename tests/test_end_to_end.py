"""The user's whole path on the embedded default data (synthetic fingerprints), through the CLI:
synth → ingest → query → pack (every encoding) → verify → load with the fpload operators."""

import json

import pytest
import torch

from fpload.cli import main
from fpload.load import Loader

pytestmark = pytest.mark.usefixtures("plugin")


def test_synth_to_training_batches(tmp_path, capsys):
    data, cat, root = tmp_path / "data", tmp_path / "cat.duckdb", tmp_path / "versions"
    assert main(["synth", "--subjects", "6", "--fingers", "2", "--impressions", "2", "--out", str(data),
                 "--seed", "3", "--size", "128", "--workers", "2"]) == 0
    assert main(["catalog", "ingest", str(data / "metadata.jsonl"), "--catalog", str(cat)]) == 0
    capsys.readouterr()
    assert main(["catalog", "query", "synthetic AND consent", "--catalog", str(cat), "--count"]) == 0
    assert capsys.readouterr().out.strip() == "24"
    for enc in ("passthrough", "jpeg", "raw", "raw-lz4"):
        cfg = tmp_path / f"{enc}.yaml"
        cfg.write_text(f"encoding: {enc}\nshard_max_samples: 5\nsplits: {{train: 0.5, val: 0.5}}\n")
        assert main(["pack", "--catalog", str(cat), "--where", "consent", "--config", str(cfg),
                     "--out", str(root), "--name", enc, "--workers", "2", "--json"]) == 0
        packed = json.loads(capsys.readouterr().out)
        assert main(["versions", "verify", str(root / enc)]) == 0
        capsys.readouterr()
        for split, n in packed["counts"].items():
            loader = Loader(root / enc, split=split, batch_size=4, device="cpu", seed=1)
            seen = []
            for images, labels, index in loader:
                assert images.shape[1:] == (1, 128, 128) and torch.isfinite(images).all()
                assert labels.max() < loader.num_classes
                seen += index.tolist()
            assert len(seen) == n and len(set(seen)) == n
