"""The (row, seed) pairs of one architecture trained together (``jmvae.training.group``).

The pairs still to train whose rows share a model kind form one group: every JMVAE-kl row
(alpha 0.01, 0.1, 1) x seed, and each other kind's seeds. A group is one unit of work (one worker
process with ``--jobs``); each member trains in the run folder ``ReproduceConfig.run_dir`` gives
its (row, seed), an ordinary run folder, and is then measured and stored as a single run is.
The group's record (``group.json``) is in ``RUNS/group-<kind>-<members>``, a folder named by its
members (``group-jmvae-kl-alpha0.01,0.1,1-seeds0,1,2``), so separate commands training other
seeds or rows into the same RUNS have other records.

Resuming: a group whose record lists pairs still to train, each at the record's step, resumes
together; a pair whose run folder holds a checkpoint outside such a group (trained alone, by an
earlier ``--no-group`` command) resumes alone; the pairs with no checkpoint form a new group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jmvae import checkpoint as ckpt
from jmvae.data import DataInfo
from jmvae.experiments.table1.reproduction import Reproduction
from jmvae.experiments.table1.rows import ROW_KINDS
from jmvae.progress import ProgressLines, draws_bar
from jmvae.training import DivergenceError
from jmvae.training.group import GROUP_RECORD, train_group

GROUPED_KINDS = ("jmvae-kl", "jmvae-zero", "vae", "cvae", "cmma")  # what train_group trains; GAN rows stay single

Pair = tuple[str, int]  # (row, training seed)


@dataclass(frozen=True)
class Group:
    """Pairs of rows of one kind trained together; ``folder``: the record's, under RUNS."""

    kind: str
    pairs: tuple[Pair, ...]
    folder: str

    @property
    def tag(self) -> str:
        return f"{self.kind} x{len(self.pairs)}"

    def members(self) -> str:
        """``alpha 0.01,0.1,1 x seeds 0,1,2`` (JMVAE-kl), ``seeds 0,1,2`` (the others)."""
        return ", ".join(f"alpha {a} x seeds {s}" if a else f"seeds {s}" for a, s in member_lists(self.kind, self.pairs))


Unit = Pair | Group  # what one worker runs at a time


def member_lists(kind: str, pairs: Sequence[Pair]) -> list[tuple[str, str]]:
    """The members as (alphas, seeds) lists, alphas with the same seeds together: one entry for a
    cross product of alphas and seeds. Alphas are "" except for JMVAE-kl."""
    seeds_of: dict[float, list[int]] = {}
    for name, seed in pairs:
        seeds_of.setdefault(ROW_KINDS[name][1], []).append(seed)
    alphas_of: dict[tuple[int, ...], list[float]] = {}
    for alpha, seeds in seeds_of.items():
        alphas_of.setdefault(tuple(sorted(seeds)), []).append(alpha)
    return [(",".join(f"{a:g}" for a in sorted(alphas)) if kind == "jmvae-kl" else "", ",".join(map(str, seeds)))
            for seeds, alphas in sorted(alphas_of.items(), key=lambda item: min(item[1]))]


def group_of(kind: str, pairs: Sequence[Pair]) -> Group:
    folder = "+".join(f"alpha{a}-seeds{s}" if a else f"seeds{s}" for a, s in member_lists(kind, pairs))
    return Group(kind, tuple(pairs), f"group-{kind}-{folder}")


def unit_tag(work: Reproduction, unit: Unit) -> str:
    return unit.tag if isinstance(unit, Group) else work.tag(*unit)


def unit_size(unit: Unit) -> int:
    return len(unit.pairs) if isinstance(unit, Group) else 1


def plan(work: Reproduction, pending: Sequence[Pair]) -> list[Unit]:
    """The units of work for ``pending``: the groups (of more than one member) and single pairs, in
    the order of their first pair. Without ``config.group``, every pair alone."""
    if not work.config.group:
        return list(pending)
    to_train: dict[str, list[Pair]] = {}
    for name, seed in pending:
        kind = ROW_KINDS[name][0]
        if kind in GROUPED_KINDS and work.trained_step(name, seed) < work.steps_needed:
            to_train.setdefault(kind, []).append((name, seed))
    units: list[Unit] = []
    for kind, pairs in to_train.items():
        units.extend(kind_units(work, kind, pairs))
    grouped = {pair for unit in units if isinstance(unit, Group) for pair in unit.pairs}
    units += [pair for pair in pending if pair not in grouped and pair not in units]  # trained: measured only
    first = {pair: i for i, pair in enumerate(pending)}
    return sorted(units, key=lambda unit: min(first[p] for p in (unit.pairs if isinstance(unit, Group) else (unit,))))


def kind_units(work: Reproduction, kind: str, pairs: list[Pair]) -> list[Unit]:
    """One kind's pairs still to train: the groups on disk that resume, each other pair with a
    checkpoint alone, the rest one new group."""
    units: list[Unit] = []
    folder_of = {work.config.run_dir(*pair).name: pair for pair in pairs}
    for record in sorted(work.config.runs.glob(f"group-{kind}-*/{GROUP_RECORD}")):
        members = [folder_of.get(m["name"]) for m in ckpt.read_json(record)["members"]]
        if all(pair in pairs for pair in members) and resumes(work, record, members):  # type: ignore[arg-type]
            units.append(Group(kind, tuple(members), record.parent.name))  # type: ignore[arg-type]
            pairs = [pair for pair in pairs if pair not in members]
    started = [pair for pair in pairs if work.trained_step(*pair) > 0]
    fresh = [pair for pair in pairs if pair not in started]
    units += started
    units += [group_of(kind, fresh)] if len(fresh) > 1 else fresh
    return units


def resumes(work: Reproduction, record: Path, members: list[Pair]) -> bool:
    """Whether the group of ``record`` resumes: each member not diverged has the checkpoint of the
    record's step (none at all if the group never checkpointed)."""
    saved = ckpt.read_json(record)
    step, diverged = saved.get("step"), saved.get("diverged", {})
    for pair in members:
        run_dir = work.config.run_dir(*pair)
        if run_dir.name in diverged:
            continue
        if not (ckpt.checkpoint_folder(run_dir, step).is_dir() if step is not None else work.trained_step(*pair) == 0):
            return False
    return True


def run_unit(work: Reproduction, unit: Unit, progress: bool, log: Callable[[str], None]) -> Any:
    return run_group(work, unit, progress, log) if isinstance(unit, Group) else work.run(*unit, progress, log)


def run_group(work: Reproduction, group: Group, progress: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Train (or resume) a group to the protocol's steps, then measure and store each member as a
    single run; a member that diverged fails the unit after the others are stored."""
    config = work.config
    out = config.runs / group.folder
    folders = [config.run_dir(*pair) for pair in group.pairs]
    record = out / GROUP_RECORD
    if record.is_file() and not resumes(work, record, list(group.pairs)):
        record.unlink()  # a stale record of these members, whose run folders hold no checkpoint of it
    at = work.trained_step(*group.pairs[0])
    log(f"[{group.tag}] training to step {work.steps_needed} (at {at}), the group's record in {out}")
    bar = progress and draws_bar()  # workers, and a log file or pipe: tagged lines instead
    lines = None if bar else ProgressLines(group.tag, at, work.steps_needed, log)
    result = train_group(work.model_config(group.pairs[0][0]), config.train, work.data, out,
                         [(ROW_KINDS[name][1], seed) for name, seed in group.pairs], resume=True, progress=bar,
                         data_info=DataInfo(work.data.name), on_step=lines, folders=folders)
    if result.interrupted:
        raise KeyboardInterrupt
    rows = [work.measure(name, seed, progress, log)
            for (name, seed), member in zip(group.pairs, result.members) if member.diverged is None]
    diverged = [member.diverged for member in result.members if member.diverged]
    if diverged:
        raise DivergenceError("; ".join(str(d) for d in diverged))
    return rows
