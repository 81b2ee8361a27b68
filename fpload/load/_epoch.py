"""One ``for`` over a loader: the epoch iterator (see :class:`fpload.load.Loader`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from fpload.load._loader import Loader


class EpochIterator:
    """One ``for`` over a :class:`Loader`: yields the current epoch's batches, then moves the
    loader to the next epoch; closed or dropped early, it ends the epoch there."""

    def __init__(self, loader: Loader):
        self._loader: Loader | None = loader
        self._batches = len(loader)
        self._started = False

    def __iter__(self) -> "EpochIterator":
        return self

    def __next__(self):
        loader = self._loader
        if loader is None:
            raise StopIteration
        self._started = True
        if loader._yielded >= self._batches:
            self.close()
            raise StopIteration
        if loader._yielded == 0 or not loader._pending:
            loader._seek()
        return loader._next_batch()

    def __len__(self) -> int:
        return self._batches

    def close(self) -> None:
        """End the epoch here (what leaving a ``for`` early does): the next ``for`` over the
        loader starts the next epoch. An iterator closed before its first ``next`` changes nothing."""
        loader, self._loader = self._loader, None
        if loader is not None:
            loader._live = None
            if self._started:
                loader._advance()

    def __del__(self) -> None:
        self.close()
