"""FploadDataModule: Trainer.fit on CPU, checkpoint mid-epoch, resume: the same batches as an
uninterrupted run (sample for sample)."""

from __future__ import annotations

import pytest

L = pytest.importorskip("lightning", reason="the lightning extra is not installed")

import torch  # noqa: E402

from fpload.integrations.lightning import FploadDataModule  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("plugin"),
    # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates (not fpload's code)
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*:FutureWarning"),
    # Lightning's hint for a non-DataLoader iterable without workers (fpload's loader has its own threads)
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    # the resumed Trainer deliberately runs without the checkpointing callback of the first run
    pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`.*"),
]


class _Recorder(L.LightningModule):
    """A tiny model that records the sample indices of every training step."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        images, labels, index = batch
        self.seen.append([int(i) for i in index])
        return self.layer(images.float().mean(dim=(1, 2, 3)).unsqueeze(1)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(tmp_path, **kw):
    kw.setdefault("enable_checkpointing", False)
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path, **kw)


def _dm(path):
    return FploadDataModule(path, val_split=None, batch_size=3, device="cpu", seed=5, shuffle="global",
                            num_threads=1, record_reads=False)


@pytest.mark.parametrize("stop", [3, 10])
def test_checkpoint_resumes_the_data_exactly(packed, tmp_path, stop):
    """Train 2 epochs with a checkpoint every step; resume a fresh Trainer from step ``stop``'s
    checkpoint (mid-epoch 0 or 1): it trains on exactly the batches the first run trained on after it."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    path = packed["raw"].path
    full = _Recorder()
    ckpts = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1,
                            filename="{step}")
    _trainer(tmp_path / "a", max_epochs=2, callbacks=[ckpts], enable_checkpointing=True).fit(
        full, datamodule=_dm(path))
    per_epoch = len(full.seen) // 2
    assert per_epoch >= 3 and sorted(sum(full.seen[:per_epoch], [])) == sorted(sum(full.seen[per_epoch:], []))

    rest = _Recorder()
    _trainer(tmp_path / "b", max_epochs=2).fit(rest, datamodule=_dm(path),
                                               ckpt_path=tmp_path / "ckpt" / f"step={stop}.ckpt")
    assert rest.seen == full.seen[stop:]


def test_state_is_json_and_tracks_trained_batches(packed, tmp_path):
    import json

    dm = _dm(packed["raw"].path)
    model = _Recorder()
    _trainer(tmp_path, max_steps=2).fit(model, datamodule=dm)
    state = json.loads(json.dumps(dm.state_dict()))["train"]
    assert state["epoch"] == 0 and state["consumed"] == 6   # two batches of 3 trained, not three

