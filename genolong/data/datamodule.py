"""The Lightning data module for genome pre-training: windows, a length curriculum, and resumable sampling.

Each training epoch is one stage of the curriculum ``stages = [(length, steps), ...]``: windows of ``length``
bases, with the batch size scaled so every step sees ``tokens_per_step`` bases (HyenaDNA's sequence-length
warm-up). The last stage repeats until the trainer's ``max_steps``. Train loaders are rebuilt every epoch
(``reload_dataloaders_every_n_epochs=1`` is set by the CLI) so the stage can change.

The sampler's position (epoch, samples consumed) is saved in every checkpoint through ``state_dict`` and
restored on resume, so a run stopped mid-epoch continues with exactly the samples it would have seen.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from genolong.data.datasets import GenomeWindows, PadCollate, annotation_for, check_soft_mask_weight
from genolong.data.hparams import with_plain_paths
from genolong.data.reads import ReadSequences
from genolong.data.regions import resolve_regions, shared_bases
from genolong.data.samplers import ResumableSampler
from genolong.errors import UsageError

log = logging.getLogger(__name__)
# Lightning warns that a mid-epoch resume is unreliable unless the DataLoader itself is stateful; this data
# module restores its sampler's position from the checkpoint instead (see load_state_dict), so the warning
# does not apply to it.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")


class GenomeDataModule(L.LightningDataModule):
    """Windows of a FASTA for language-model pre-training.

    Args:
        fasta: reference FASTA.
        train_regions: regions to train on (contigs, ``chr:1-1000`` strings, or a BED path); None = all.
        val_regions: held-out regions for validation (tiled).
        test_regions: held-out regions for testing (tiled); default: the validation regions.
        tokenizer: tokenizer spec (``nucleotide``, ``kmer:6``, ``codon``); must match the model's.
        stages: curriculum as ``[[length, steps], ...]``; default one stage of ``[[length, 0]]`` (0 = open-ended).
        length: window length when ``stages`` is not given, and of validation/test windows by default.
        eval_length: window length of validation/test tiles (default: the last stage's length).
        tokens_per_step: bases per optimizer step; batch size = tokens_per_step // stage length (at least 1).
        steps_per_epoch: steps of an open-ended stage before the epoch (and a validation) ends.
        max_n_fraction: windows with more N are skipped (tiles) or redrawn (random windows).
        reverse_complement: serve reverse-complement windows half of the time (training only).
        num_workers: DataLoader worker processes.
        eval_batch_size: batch size for validation and testing.
        seed: base of all data randomness.
        reads: train on the sequences of this BAM/CRAM's reads instead of reference windows (validation and
            testing stay on reference tiles); see :mod:`genolong.data.reads`.
        read_regions: only reads overlapping these regions (default: the whole file).
        read_min_mapq: reads below this mapping quality are left out (counted).
        annotation: GFF3/GTF of the CDS, read once: the codon tokenizer encodes every window in the annotated
            reading frames (training, validation and test). Meant for ``codon`` (without it every
            window is single bases, and a warning says so); refused with any other tokenizer.
        soft_mask_weight: weight in the training loss of tokens spelling soft-masked (lowercase, repeat-masked)
            bases: 1 trains on them like any base (the default), 0 leaves them out, 0.1 down-weights them as GPN
            does. Validation and test bits per base always count every base.
    """

    def __init__(
        self,
        fasta: str,
        train_regions: str | list[str] | None = None,
        val_regions: str | list[str] | None = None,
        test_regions: str | list[str] | None = None,
        tokenizer: str = "nucleotide",
        stages: list[tuple[int, int]] | None = None,
        length: int = 1024,
        eval_length: int | None = None,
        tokens_per_step: int = 16384,
        steps_per_epoch: int = 500,
        max_n_fraction: float = 0.1,
        reverse_complement: bool = True,
        num_workers: int = 0,
        eval_batch_size: int = 8,
        seed: int = 0,
        reads: str | None = None,
        read_regions: str | list[str] | None = None,
        read_min_mapq: int = 0,
        annotation: str | None = None,
        soft_mask_weight: float = 1.0,
    ):
        super().__init__()
        from genolong.tokenizers.factory import build_tokenizer, takes_cds

        self.save_hyperparameters()
        with_plain_paths(self.hparams)  # a Path given in Python is stored as a string
        self.tokenizer = build_tokenizer(tokenizer)
        self.stages = [(int(n), int(s)) for n, s in (stages or [(length, 0)])]
        if any(n < 2 or s < 0 for n, s in self.stages):
            raise UsageError(f"curriculum stages must be [length >= 2, steps >= 0] pairs, got {self.stages}")
        self.eval_length = eval_length or self.stages[-1][0]
        if tokens_per_step < max(n for n, _ in self.stages):
            log.warning("tokens_per_step %d is less than one window of %d bases: such steps take one window each",
                        tokens_per_step, max(n for n, _ in self.stages))  # fmt: skip
        self.sampler: ResumableSampler | None = None
        self._eval_tiles: dict[str, GenomeWindows] = {}  # per split: fixed, so built (and reported) once
        self._restored: dict[str, int] | None = None
        self._reads: ReadSequences | None = None  # read once, re-cut per curriculum stage
        if annotation is None and takes_cds(self.tokenizer):
            log.warning("the codon tokenizer has no CDS annotation (data.annotation): every window is tokenized "
                        "as single bases, without codons")  # fmt: skip
        check_soft_mask_weight(soft_mask_weight)
        if soft_mask_weight != 1.0 and reads is not None:
            raise UsageError("soft_mask_weight weighs soft-masked reference bases; reads carry no soft mask",
                             hint="leave out data.reads to use data.soft_mask_weight")  # fmt: skip
        if annotation is not None and reads is not None:
            raise UsageError("a CDS annotation gives reading frames on the reference, not on reads",
                             hint="leave out data.reads to use data.annotation")  # fmt: skip
        self.annotation = None if annotation is None else self._read_annotation(annotation)

    def stage(self, epoch: int) -> tuple[int, int, int]:
        """(window length, batch size, steps) of the curriculum stage that ``epoch`` trains. With reads, the
        batch size counts the bases a sample holds on average (a read shorter than the window is served whole),
        so a step still sees about ``tokens_per_step`` bases."""
        length, steps = self.stages[min(epoch, len(self.stages) - 1)]
        served = self._read_sequences(length).mean_piece_length() if self.hparams.reads else length
        batch_size = max(1, round(self.hparams.tokens_per_step / served))
        return length, batch_size, steps or self.hparams.steps_per_epoch

    def _windows(self, regions: Any, length: int, sampling: str, samples: int = 0) -> GenomeWindows:
        hp = self.hparams
        return GenomeWindows(
            hp.fasta,
            self.tokenizer,
            length,
            regions=regions,
            sampling=sampling,
            samples_per_epoch=samples,
            max_n_fraction=hp.max_n_fraction,
            reverse_complement=hp.reverse_complement and sampling == "random",
            seed=hp.seed,
            annotation=self.annotation,
            soft_mask_weight=hp.soft_mask_weight if sampling == "random" else 1.0,  # evaluation counts every base
        )

    def _read_annotation(self, path: str) -> Any:
        annotation = annotation_for(path, self.tokenizer, _fasta_lengths(self.hparams.fasta))
        log.info("%s: %d CDS give the codon frames", path, annotation.cds_count)
        return annotation

    def _read_sequences(self, length: int) -> ReadSequences:
        """The reads (read once; validation and test regions held out), cut into pieces of ``length`` bases."""
        hp = self.hparams
        if self._reads is None:
            lengths = _fasta_lengths(hp.fasta)
            held_out = [r for spec in (hp.val_regions, hp.test_regions) if spec is not None
                        for r in resolve_regions(spec, lengths)]  # fmt: skip
            self._reads = ReadSequences(hp.reads, self.tokenizer, length, regions=_as_list(hp.read_regions),
                                        reverse_complement=hp.reverse_complement, seed=hp.seed,
                                        reference=hp.fasta, min_mapq=hp.read_min_mapq,
                                        max_n_fraction=hp.max_n_fraction, held_out=held_out)  # fmt: skip
        self._reads.length = length
        return self._reads

    def _loader(self, dataset: GenomeWindows, batch_size: int, sampler: Any = None) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=PadCollate(self.tokenizer.pad_token_id),
            num_workers=workers,
            persistent_workers=False,
            multiprocessing_context="spawn" if workers else None,
        )

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        length, batch_size, steps = self.stage(epoch)
        replicas = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        epoch_size = steps * batch_size * replicas
        if self.hparams.reads:
            dataset = self._read_sequences(length)
            dataset.samples = epoch_size
        else:
            dataset = self._windows(self.hparams.train_regions, length, "random", samples=epoch_size)
        self.sampler = ResumableSampler(
            epoch_size, shuffle=False, seed=self.hparams.seed, num_replicas=replicas, rank=rank
        )
        self.sampler.set_epoch(epoch)
        if self._restored is not None and self._restored["epoch"] == epoch:
            self.sampler.consumed = self._restored["consumed"]
            log.info("resuming epoch %d after %d samples", epoch, self.sampler.consumed)
        self._restored = None
        what = "pieces of reads of at most" if self.hparams.reads else "windows of"
        log.info("epoch %d: %s %d bases, batch size %d, %d steps", epoch, what, length, batch_size, steps)
        return self._loader(dataset, batch_size, self.sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._tiles("validation", self.hparams.val_regions), self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        regions = self.hparams.test_regions or self.hparams.val_regions
        return self._loader(self._tiles("test", regions), self.hparams.eval_batch_size)

    def _tiles(self, split: str, regions: Any) -> GenomeWindows:
        """The fixed tiling of an evaluation split; tiles skipped for their N content are reported, since the
        split's metrics then cover only the rest."""
        if split in self._eval_tiles:  # dataloaders are rebuilt every epoch; the tiling never changes
            return self._eval_tiles[split]
        tiles = self._eval_tiles[split] = self._windows(regions, self.eval_length, "tile")
        if not self.hparams.reads:  # windows of the reference: the split must not be trained on
            shared = shared_bases(tiles.regions, resolve_regions(self.hparams.train_regions, tiles.lengths))
            if shared:
                log.warning("%s: its regions share %d bases with the training regions, so its metrics are not held "
                            "out", split, shared)  # fmt: skip
        if tiles.skipped["n_fraction"]:
            log.warning("%s: %d of %d windows of %d bases skipped (more than %.0f%% N); its metrics cover the other %d",
                        split, tiles.skipped["n_fraction"], tiles.skipped["n_fraction"] + len(tiles), self.eval_length,
                        100 * self.hparams.max_n_fraction, len(tiles))  # fmt: skip
        return tiles

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Called once per batch the training loop actually consumes (not per prefetched batch).
        if self.trainer is not None and self.trainer.training and self.sampler is not None:
            self.sampler.advance(len(batch["input_ids"]))
        return batch

    def state_dict(self) -> dict[str, Any]:
        if self.sampler is None:
            return {}
        state = self.sampler.state_dict()
        if self._step_in_flight():  # a checkpoint taken inside a step (an interrupt): its batch was not trained on
            state["consumed"] -= self.sampler.last_advance
        return state

    def _step_in_flight(self) -> bool:
        """Whether the training loop has taken a batch whose step has not run to its end (Lightning counts a batch
        'ready' when fetched and 'processed' once its optimizer step is done)."""
        if self.trainer is None:
            return False
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        return progress.ready > progress.processed

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._restored = {"epoch": int(state["epoch"]), "consumed": int(state["consumed"])}


def _fasta_lengths(fasta: str) -> dict[str, int]:
    from genolong.io.fasta import Fasta

    with Fasta(fasta) as reference:
        return dict(reference.lengths)


def _as_list(regions: str | list[str] | None) -> list[str] | None:
    return [regions] if isinstance(regions, str) else regions
