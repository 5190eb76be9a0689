"""A sampler whose position is part of the checkpoint, so a resumed run sees exactly the data it would have seen.

Indices it yields encode the epoch (``epoch * 2**40 + i``) so a dataset whose samples are pure functions
of their index (:class:`genolong.data.datasets.GenomeWindows`) draws fresh windows every epoch without any
state shared with DataLoader workers. Shuffling is a permutation seeded by ``(seed, epoch)``.

The position saved is the number of samples the *training loop consumed*, not the number the DataLoader
prefetched: the data module advances it from ``on_before_batch_transfer``, which Lightning calls once for each
batch the training loop takes (inside the loop's ``advance``), not for batches a loader prefetched.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

EPOCH_STRIDE = 2**40  # index = epoch * EPOCH_STRIDE + i: unique across epochs whatever their sizes


class ResumableSampler(Sampler[int]):
    """Epoch-aware, optionally shuffled, resumable sampler over ``epoch_size`` samples.

    With ``num_replicas > 1`` (DDP) each replica takes every ``num_replicas``-th sample of the shared order,
    so replicas never see the same sample and together cover the epoch.
    """

    def __init__(
        self,
        epoch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        encode_epoch: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.epoch_size = epoch_size
        self.shuffle = shuffle
        self.seed = seed
        self.encode_epoch = encode_epoch
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.consumed = 0  # samples of this epoch already trained on (this replica's count)
        self.last_advance = 0  # samples of the latest advance (one batch)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.consumed = 0

    def order(self) -> np.ndarray:
        """(epoch_size,) this epoch's order of sample indices (all replicas)."""
        if self.shuffle:
            return np.random.default_rng([self.seed, self.epoch]).permutation(self.epoch_size)
        return np.arange(self.epoch_size)

    def __len__(self) -> int:
        # The whole epoch's share, also when resuming mid-epoch: Lightning counts batches of a resumed epoch
        # from its restored batch index, so the length must not shrink by what was consumed.
        return len(range(self.rank, self.epoch_size, self.num_replicas))

    def __iter__(self) -> Iterator[int]:
        mine = self.order()[self.rank :: self.num_replicas]
        offset = self.epoch * EPOCH_STRIDE if self.encode_epoch else 0
        for i in mine[self.consumed :]:
            yield offset + int(i)

    def advance(self, samples: int) -> None:
        """Record that the training loop consumed ``samples`` more samples of this epoch."""
        self.consumed += samples
        self.last_advance = samples

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "consumed": self.consumed, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed, self.seed = state["epoch"], state["consumed"], state["seed"]
