"""A PyTorch Lightning ``LightningDataModule`` over fpload versions, resumed exactly by checkpoints.

Needs the ``lightning`` extra (``pip install fpload[lightning]``).

The module's ``state_dict`` is the training loader's :meth:`fpload.load.Loader.state_dict` *as of
the last batch that reached ``training_step``* — Lightning fetches a batch ahead, so the loader
itself is one batch further — and ``load_state_dict`` hands it to the next training loader. A run
resumed from a Lightning checkpoint therefore trains on exactly the batches the uninterrupted run
would have (and, with the fpload operators, the same pixels), at any number of devices. Rank and
world size come from the trainer.

Example::

    import lightning as L
    from fpload.integrations.lightning import FploadDataModule

    dm = FploadDataModule("versions/all", batch_size=64, device="gpu", run_name="resnet-a")
    trainer = L.Trainer(max_epochs=10, callbacks=[L.pytorch.callbacks.ModelCheckpoint(every_n_train_steps=500)])
    trainer.fit(model, datamodule=dm)                          # preempted...
    trainer.fit(model, datamodule=dm, ckpt_path="last.ckpt")   # ...resumes mid-epoch, exactly

For DDP on GPUs Lightning sets each process's CUDA device before ``setup``, as the Loader expects.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import lightning as L

from fpload.config import resolve_config
from fpload.load import Loader, LoaderConfig
from fpload.load._order import rank_batches


class _TrackedEpoch:
    """One epoch of the training Loader that queues the loader's state after each batch it yields.

    Lightning sees ``state_dict``/``load_state_dict`` on it and so treats it as a resumable
    dataloader (a mid-epoch checkpoint restores its position); both delegate to the module.
    """

    def __init__(self, module: "FploadDataModule"):
        self._module = module

    def __len__(self) -> int:
        """A whole epoch's batches for this rank: Lightning counts the batches a resumed epoch
        already trained on itself, and stops at this number."""
        loader = self._module._train
        return rank_batches(loader.split_size, rank=loader.rank, world_size=loader.world_size,
                            batch_size=loader.config.batch_size, last_batch=loader.config.last_batch)

    def __iter__(self):
        loader, pending = self._module._train, self._module._pending
        for batch in loader:
            pending.append(loader.state_dict())
            yield batch

    def state_dict(self) -> dict[str, Any] | None:
        """The loader's state after the last batch that reached ``training_step``."""
        return self._module._state

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from a state of :meth:`state_dict`."""
        self._module.load_state_dict({"train": state})


class FploadDataModule(L.LightningDataModule):
    """Train (and optionally validation) loaders of one fpload version for ``Trainer.fit``.

    ``version``: a version folder (``ROOT/NAME/ID``, or ``ROOT/NAME`` for the latest);
    ``config``: a :class:`~fpload.load.LoaderConfig` (or the name/path of a loader config, e.g.
    ``"train"``); ``val_split``: None for no validation loader; other keyword arguments (``batch_size``,
    ``device``, ``seed``, ``run_name``, ``tags``, ``features``, ...) go to every
    :class:`~fpload.load.Loader`. The validation loader never shuffles and has no augmentation.
    """

    def __init__(self, version: str | Path, *, train_split: str = "train", val_split: str | None = "val",
                 config: LoaderConfig | str | None = None, **loader_kwargs: Any):
        super().__init__()
        if isinstance(config, str):
            config = LoaderConfig.from_yaml(resolve_config(config, "loader"))
        self.version, self.train_split, self.val_split = version, train_split, val_split
        self.config, self.loader_kwargs = config, loader_kwargs
        self._train: Loader | None = None
        self._val: Loader | None = None
        self._pending: deque = deque()   # states of batches fetched but not yet trained on
        self._state: dict[str, Any] | None = None  # state after the last batch trained on
        if val_split:  # without one, Lightning sees no val_dataloader and runs no validation loop
            self.val_dataloader = self._val_dataloader

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def setup(self, stage: str) -> None:
        """Build the loaders of this process's rank (called by Lightning on every process)."""
        rank, world = self._rank_world()
        if stage == "fit" and self._train is None:
            self._train = Loader(self.version, split=self.train_split, rank=rank, world_size=world,
                                 config=self.config, state=self._state, **self.loader_kwargs)
        if stage in ("fit", "validate") and self.val_split and self._val is None:
            kwargs = {**self.loader_kwargs, "augment": False, "shuffle": "none"}
            self._val = Loader(self.version, split=self.val_split, rank=rank, world_size=world,
                               config=self.config, **kwargs)

    def train_dataloader(self) -> _TrackedEpoch:
        """The training loader, one epoch per iteration."""
        if self._train is None:
            self.setup("fit")
        self._pending.clear()
        return _TrackedEpoch(self)

    def _val_dataloader(self) -> Loader:
        """The validation loader (offered to Lightning as ``val_dataloader`` only with a ``val_split``)."""
        if self._val is None:
            self.setup("validate")
        return self._val

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Called right before ``training_step`` for each batch: that batch is now trained on."""
        trainer = self.trainer
        if trainer is not None and trainer.training and self._pending:
            self._state = self._pending.popleft()
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The training data's position for a Lightning checkpoint (JSON-serialisable)."""
        return {"train": self._state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training data from a checkpoint's :meth:`state_dict`."""
        self._state = state_dict.get("train")
        if self._train is not None and self._state is not None:
            self._train.load_state_dict(self._state)
