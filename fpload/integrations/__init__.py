"""Bridges to training frameworks; each imports its framework only when used (optional extras).

- :mod:`fpload.integrations.lightning`: :class:`~fpload.integrations.lightning.FploadDataModule`,
  a PyTorch Lightning ``LightningDataModule`` whose checkpoints resume the data exactly
  (``pip install fpload[lightning]``).
"""
