"""Your own data, the way any Lightning user writes it: scikit-learn's wine data set.

178 wines, 13 chemical measurements each, 3 cultivars. Train the project's model on it
with::

    python -m digits.fit --data examples.wine.WineDataModule --trainer.max_epochs 30

The project's model, CLI, checkpoints, resume, TensorBoard logs and summary need only
what this class provides: ``train_dataloader``, ``val_dataloader`` and
``test_dataloader`` giving ``(features, label)`` batches, and ``num_features`` and
``num_classes``. docs/adapt.md walks through it.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset


class WineDataModule(L.LightningDataModule):
    """The wine data set, split 60/20/20 by class, each measurement standardised.

    Args:
        batch_size: Samples per training step.
        split_seed: The seed of the split, so that the same seed gives the same split.
    """

    num_features = 13  # what the model's first layer takes
    num_classes = 3  # what its last layer gives
    # The settings a checkpoint holds a run to (the split); batch_size may differ.
    checkpoint_settings = ("split_seed",)

    def __init__(self, batch_size: int = 16, split_seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()  # recorded in the checkpoint and in TensorBoard

    def setup(self, stage: str) -> None:
        features, labels = load_wine(return_X_y=True)
        seed = self.hparams.split_seed
        # 20% test, then 25% of the rest (20% of all) for validation, each by class.
        rest_x, test_x, rest_y, test_y = train_test_split(
            features, labels, test_size=0.2, stratify=labels, random_state=seed
        )
        train_x, val_x, train_y, val_y = train_test_split(
            rest_x, rest_y, test_size=0.25, stratify=rest_y, random_state=seed
        )
        # The scaling is fitted on the training split alone, so that validation and test
        # stay unseen.
        scaler = StandardScaler().fit(train_x)
        self.train_set = as_dataset(scaler.transform(train_x), train_y)
        self.val_set = as_dataset(scaler.transform(val_x), val_y)
        self.test_set = as_dataset(scaler.transform(test_x), test_y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=len(self.val_set))

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=len(self.test_set))


def as_dataset(features: np.ndarray, labels: np.ndarray) -> TensorDataset:
    """float32 features and int64 labels, what the model and its loss take."""
    return TensorDataset(
        torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.int64)
    )
