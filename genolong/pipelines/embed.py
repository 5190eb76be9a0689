"""Embeddings: the final hidden states of a genolong backbone, per position or pooled per sequence.

    vectors = embed_sequences(model, tokenizer, ["ACGT...", ...], pooling="mean")   # (N, D) float32

Any genolong model works (causal or masked LM, classification or track model): its backbone's final hidden
states (after the last norm) are the embeddings. ``pooling``: ``mean`` over the sequence's positions, ``last``
position (all a causal model has read), or ``none`` (one (L, D) array per sequence).

Positions are tokens, BOS/EOS included where the tokenizer adds them: bases for a single-base tokenizer, k-mers
for a k-mer one; for a codon model the codons of the CDS given in ``cds`` (a codon with an N is ``[UNK_CODON]``
and its 3 bases) and single bases elsewhere. A codon model reads each sequence in the frames of its CDS:
``cds`` holds, per sequence, the CDS segments overlapping it in its own coordinates
(:meth:`~genolong.data.annotation.CdsAnnotation.segments`; the command takes ``--annotation``, by default the
one the model was trained with). Sequences longer than ``chunk`` tokens (default: the model's context,
``config.max_position``):

- a causal model of recurrent mixers only (Mamba2, mLSTM) reads the sequence in pieces, its state carried from
  piece to piece: exactly a single pass over the whole sequence;
- any other model (Hyena or attention mixers: their filters and positions end at the context; bidirectional
  models) reads overlapping windows of ``chunk`` tokens advanced by ``chunk // 2``: each position's vector comes
  from the window in which it is most central (a quarter window of context on each side, less at the ends).

Pooled embeddings of a long sequence are pooled piece by piece (a running float64 sum for ``mean``), so memory
does not grow with its length.

Ids: a BED region's name column (else ``contig:start-end``, 1-based) or the FASTA record's name. Pooled outputs
(``.npy`` with its ``.ids.txt``, pooled ``.parquet``) keep one row per sequence in input order, so repeated ids
are allowed there; per-position outputs are keyed by id (``.npz``, per-position ``.parquet``), so a repeated id
is refused before any work (exit 2), naming it and its BED lines. Empty sequences (a zero-length BED interval,
an empty FASTA record) have no embedding: :func:`drop_empty` skips them and the command counts them. Embeddings
that are not finite are never written (:class:`~genolong.errors.NonFiniteError`, exit 7).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from genolong.errors import InconsistentDataError, NonFiniteError, UsageError
from genolong.pipelines.loading import check_batch_size, output_suffix
from genolong.tokenizers.batching import pad_token_rows
from genolong.tokenizers.cds import CdsSegment
from genolong.tokenizers.factory import takes_cds

log = logging.getLogger(__name__)

POOLINGS = ("mean", "last", "none")
SUFFIXES = (".npy", ".npz", ".parquet")


def embed_sequences(model: Any, tokenizer: Any, sequences: Sequence[str], *, pooling: str = "mean",
                    batch_size: int = 16, device: str = "cpu", chunk: int | None = None, progress: bool = False,
                    cds: Sequence[Sequence[CdsSegment]] | None = None) -> np.ndarray | list[np.ndarray]:  # fmt: skip
    """(N, D) float32 pooled embeddings, or for ``pooling="none"`` a list of (T_i, D) arrays (T_i tokens).
    ``cds``: a codon model's CDS segments, one list per sequence (see the module docstring)."""
    if pooling not in POOLINGS:
        raise UsageError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    check_batch_size(batch_size)
    cds = _checked_cds(tokenizer, cds, len(sequences))
    empty = [i for i, s in enumerate(sequences) if not s]
    if empty:
        raise UsageError(f"sequence {empty[0]} (0-based) is empty: it has no embedding", hint="leave it out")
    backbone = getattr(model, "model", model)  # the GenoLongModel inside any head
    chunk = int(chunk or backbone.config.max_position)
    if chunk < 2:
        raise UsageError(f"chunk must be at least 2 tokens, got {chunk}")
    tokens = [tokenizer.encode(s, **({} if cds is None else {"cds": cds[i]})) for i, s in enumerate(sequences)]
    short = [i for i, ids in enumerate(tokens) if len(ids) <= chunk]  # read in one pass, in batches
    out: list[np.ndarray | None] = [None] * len(sequences)
    order = sorted(short, key=lambda i: len(tokens[i]))  # similar lengths together: little padding
    bar = tqdm(total=len(sequences), desc="embedding", unit="sequence", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = (t.to(device) for t in pad_token_rows([tokens[i] for i in rows], tokenizer.pad_token_id))
            hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # (b, T, D)
            for row, i in enumerate(rows):
                out[i] = _pool(hidden[row, : len(tokens[i])], pooling)
            bar.update(len(rows))
        for i in sorted(set(range(len(sequences))) - set(short)):
            out[i] = _embed_long(backbone, tokens[i], chunk, device, pooling, progress)
            bar.update(1)
    bar.close()
    return out if pooling == "none" else np.stack(out).astype(np.float32)


def _checked_cds(tokenizer: Any, cds: Sequence[Sequence[CdsSegment]] | None, n: int) -> list[list] | None:
    """``cds`` as one list of segments per sequence: required by a codon model, refused by the others."""
    if not takes_cds(tokenizer):
        if cds is not None:
            raise UsageError(f"CDS segments were given but the {type(tokenizer).__name__} does not use them",
                             hint="give cds only with a codon model")  # fmt: skip
        return None
    if cds is None:
        raise UsageError("the model's codon tokenizer reads codons in the frames of a CDS, and no CDS segments "
                         "were given", hint="pass cds= (one list per sequence), or --annotation on the command")
    if len(cds) != n:
        raise UsageError(f"cds has {len(cds)} entries for {n} sequences: give one list of segments per sequence")
    return [list(segments) for segments in cds]


def _pool(hidden: torch.Tensor, pooling: str) -> np.ndarray:
    """hidden (L, D) -> (D,) or (L, D), float32 numpy."""
    if pooling == "mean":
        hidden = hidden.mean(0)
    elif pooling == "last":
        hidden = hidden[-1]
    return hidden.float().cpu().numpy()


class _Pooler:
    """Pools a sequence's (L, D) states handed over in consecutive pieces, keeping only what the pooling needs
    (a running sum and the last vector for ``mean``/``last``: memory independent of L)."""

    def __init__(self, pooling: str):
        self.pooling, self.pieces, self.total, self.count = pooling, [], 0.0, 0

    def add(self, hidden: torch.Tensor) -> None:  # (n, D)
        if self.pooling == "none":
            self.pieces.append(hidden.float().cpu())
        else:
            self.total = self.total + hidden.double().sum(0)  # float64: a long sum stays exact enough
            self.count += hidden.shape[0]
            self.last = hidden[-1]

    def result(self) -> np.ndarray:
        if self.pooling == "none":
            return torch.cat(self.pieces).numpy()
        vector = self.total / self.count if self.pooling == "mean" else self.last  # (D,)
        return vector.float().cpu().numpy()


def _embed_long(backbone: Any, token_ids: Sequence[int], chunk: int, device: str, pooling: str,
                progress: bool) -> np.ndarray:  # fmt: skip
    """The pooled (D,) or per-position (L, D) states of a sequence of L > ``chunk`` tokens, read in pieces (see
    the module docstring); a progress bar over its pieces."""
    ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64), device=device)[None]  # (1, L)
    config, pooler, length = backbone.config, _Pooler(pooling), ids.shape[1]
    if not config.bidirectional and not config.position_limited:  # state carried piece to piece: exact
        cache = None
        for piece in tqdm(ids.split(chunk, dim=1), desc="  pieces", unit="piece", leave=False, disable=not progress):
            out = backbone(input_ids=piece, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            pooler.add(out.last_hidden_state[0])
        return pooler.result()
    step, margin = chunk // 2, chunk // 4
    starts = [*range(0, length - chunk, step), max(length - chunk, 0)]  # the last window ends with the sequence
    # each position from the window where it is most central: window j from its start + margin (0 for the
    # first) up to where window j + 1 takes over (the sequence end for the last)
    firsts = [0] + [start + margin for start in starts[1:]]
    for start, first, end in tqdm(list(zip(starts, firsts, [*firsts[1:], length], strict=True)), desc="  windows",
                                  unit="window", leave=False, disable=not progress):  # fmt: skip
        hidden = backbone(input_ids=ids[:, start : start + chunk]).last_hidden_state[0]  # (chunk, D)
        pooler.add(hidden[first - start : end - start])
    return pooler.result()


def check_embed_output(output: str | os.PathLike, pooling: str) -> None:
    """Refuse, before any work, an output format or pooling that cannot be written (UsageError, exit 2)."""
    name = os.fspath(output)
    output_suffix(name, SUFFIXES)
    if pooling not in POOLINGS:
        raise UsageError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if name.endswith(".npy") and pooling == "none":
        raise UsageError("per-position embeddings (--pooling none) are written as .npz or .parquet, not .npy",
                         path=name)  # fmt: skip
    if name.endswith(".npz") and pooling != "none":
        raise UsageError(f"pooled embeddings ({pooling}) are written as .npy or .parquet; .npz holds per-position "
                         "ones (--pooling none)", path=name)  # fmt: skip


def keyed_by_id(output: str | os.PathLike, pooling: str) -> bool:
    """Whether ``output`` stores the embeddings under their ids (so ids must be unique): per-position outputs."""
    return pooling == "none" or os.fspath(output).endswith(".npz")


class Piece(NamedTuple):
    """A sequence to embed: its id, where it lies in the FASTA (contig, 0-based start) and its bases."""

    id: str
    contig: str
    start: int
    seq: str


def sequences_to_embed(fasta: Any, *, records: Sequence[str] | str | None = None, bed: str | os.PathLike | None = None,
                       unique_ids: bool = False) -> Iterator[Piece]:  # fmt: skip
    """BED regions (id = name column, else ``contig:start-end`` 1-based) or FASTA records (all, or those named
    in ``records``: a list, one name, or names separated by commas), in order.
    ``unique_ids``: refuse a repeated id (UsageError naming it and its BED lines)."""
    from genolong.io.intervals import read_bed

    first_line: dict[str, int | None] = {}
    if bed is not None and records is not None:
        raise UsageError("give --bed or --records, not both (a BED already says which sequences to embed)")
    if bed is not None:
        for interval in read_bed(bed):
            if interval.contig not in fasta.lengths or interval.end > fasta.lengths[interval.contig]:
                raise InconsistentDataError(f"region {interval.contig}:{interval.start + 1}-{interval.end} is "
                                            "not in the reference", path=bed, line=interval.line)  # fmt: skip
            name = interval.name or f"{interval.contig}:{interval.start + 1}-{interval.end}"
            if unique_ids:
                _check_new_id(name, interval.line, first_line, bed)
            yield Piece(name, interval.contig, interval.start,
                        fasta.fetch(interval.contig, interval.start, interval.end).upper())
        return
    for name in record_names(records, fasta):
        if name not in fasta.lengths:
            raise InconsistentDataError(f"no record {name!r} in the FASTA", path=getattr(fasta, "path", None))
        if unique_ids:
            _check_new_id(name, None, first_line, None)
        yield Piece(name, name, 0, fasta.fetch(name).upper())


def record_names(records: Sequence[str] | str | None, fasta: Any) -> list[str]:
    """The FASTA records asked for: all (None), a list, one name, or names separated by commas (``chr1,chr2``;
    a name that itself holds a comma is taken whole when the FASTA has it)."""
    if records is None:
        return list(fasta.names)
    if isinstance(records, str):
        if records in fasta.lengths:
            return [records]
        return [name.strip() for name in records.split(",") if name.strip()]
    return list(records)


def _check_new_id(name: str, line: int | None, first_line: dict[str, int | None], bed: Any) -> None:
    if name in first_line:
        where = f" (first on line {first_line[name]})" if line is not None else ""
        fix = "give each region a unique name in the BED's 4th column" if bed is not None else "name each record once"
        raise UsageError(f"id {name!r} is repeated{where}: per-position outputs (.npz, --pooling none) store one "
                         "array per id", path=bed, line=line, hint=f"{fix}, or write pooled .npy/.parquet")  # fmt: skip
    first_line[name] = line


def drop_empty(pieces: Sequence[Piece]) -> tuple[list[Piece], list[str]]:
    """(the pieces with bases, the ids of the empty ones): empty sequences have no embedding."""
    return [p for p in pieces if p.seq], [p.id for p in pieces if not p.seq]


def write_embeddings(ids: Sequence[str], vectors: np.ndarray | list[np.ndarray], output: str | os.PathLike) -> None:
    """Pooled (N, D): ``.npy`` (ids in ``OUTPUT.ids.txt``, one per line, same order) or ``.parquet`` (column
    ``id``, then ``e0..e{D-1}``). Per position (list of (L_i, D)): ``.npz`` (one array per id) or ``.parquet``
    (columns ``id``, ``position`` (0-based token index in the sequence), ``e0..``)."""
    name = os.fspath(output)
    per_position = isinstance(vectors, list)
    _check_finite(ids, vectors)
    if name.endswith(".npy") and not per_position:
        np.save(name, vectors)
        with open(name + ".ids.txt", "w") as fh:
            fh.writelines(f"{i}\n" for i in ids)
    elif name.endswith(".npz") and per_position:
        np.savez(name, **dict(zip(ids, vectors, strict=True)))
    elif name.endswith(".parquet"):
        import pandas as pd

        if per_position:
            frame = pd.DataFrame(np.concatenate(vectors), columns=[f"e{k}" for k in range(vectors[0].shape[1])])
            frame.insert(0, "position", np.concatenate([np.arange(len(v)) for v in vectors]))
            frame.insert(0, "id", np.repeat(list(ids), [len(v) for v in vectors]))
        else:
            frame = pd.DataFrame(vectors, columns=[f"e{k}" for k in range(vectors.shape[1])])
            frame.insert(0, "id", list(ids))
        frame.to_parquet(name, index=False)
    else:
        raise UsageError(f"embeddings are written as {'.npz' if per_position else '.npy'} or .parquet", path=name)


def _check_finite(ids: Sequence[str], vectors: np.ndarray | list[np.ndarray]) -> None:
    """NonFiniteError (exit 7) naming the first sequence whose embedding holds NaN or Inf."""
    for name, vector in zip(ids, vectors, strict=True):
        if not np.isfinite(vector).all():
            raise NonFiniteError(f"the embedding of {name!r} is not finite (NaN or Inf); nothing was written",
                                 hint="check the model's weights: was it trained to NaN?")  # fmt: skip
