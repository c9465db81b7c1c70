"""``reproduce()``: every (row, seed) of Table 1 not yet measured, in this process or in worker processes.

The pairs still to train of rows of one architecture train together as a group (``groups``;
``ReproduceConfig.group``). With several jobs, each worker process holds the ``Reproduction``
(sent once, at its start) and runs one unit (a (row, seed), or a group) at a time, handed over a
pipe of its own; the parent hands the next unit to whichever worker finishes. Signals: Ctrl-C reaches the whole process group, and training catches
it (checkpoint, stop) through its own handler; elsewhere a worker leaves it to the parent, which
then sends every worker SIGTERM (``Pool.stop``): a training run checkpoints and stops, an
evaluation in progress is abandoned, an idle worker waits for its stop message.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from jmvae import checkpoint as ckpt
from jmvae.cores import usable_cores
from jmvae.data import PairedData
from jmvae.errors import note_warning
from jmvae.experiments.table1.groups import Group, Unit, plan, run_unit, unit_size, unit_tag
from jmvae.experiments.table1.reproduction import Reproduction, ReproduceConfig, check_run_matches
from jmvae.experiments.table1.rows import ROW_KINDS, seed_rows
from jmvae.experiments.table1.store import read_table, write_outputs
from jmvae.progress import write_line

STOP_GRACE_SECONDS = 120.0  # how long stopping workers may take to checkpoint before they are killed



def reproduce(
    data: PairedData,
    config: ReproduceConfig,
    command: str,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and evaluate every (row, seed) of Table 1 not yet done; write table1.{json,md}; return the JSON.

    A (row, seed) already in ``OUT/table1.json``, or in its run folder's ``evaluation.json``,
    with the same protocol is kept as it is, so the small table file alone carries finished rows
    across machines; run folders (checkpoints) only matter for runs still in progress. The table
    is merged seed by seed under a file lock at every write, so several processes may share one
    OUT: ``config.jobs`` worker processes (each with ``train.threads`` threads) take the runs
    still to do from one queue, and separate commands may work on disjoint rows.
    """
    config.out.mkdir(parents=True, exist_ok=True)
    work = Reproduction(data, config, command)
    pending, added, measured = [], False, read_table(config.out)
    for name in config.rows:
        for seed in config.training_seeds:
            row = work.stored(name, seed, log)
            if row is None:
                pending.append((name, seed))
            elif row != seed_rows(measured.get(name)).get(seed):  # from its run folder, or completed
                write_outputs(config.out, command, {name: {seed: row}})
                added = True
    if not (pending or added):  # nothing trained or measured: the table files stay as they are
        log(f"nothing to do: {config.out / 'table1.json'} holds every row with this protocol and is left unchanged; "
            "to measure them anew, reproduce into another folder")
        return ckpt.read_json(config.out / "table1.json")
    for name, seed in pending:  # a wrong run folder stops the command before anything starts
        check_run_matches(config.run_dir(name, seed), replace(config.train, seed=seed))
    units = plan(work, pending)
    for unit in units:
        if isinstance(unit, Group):
            log(f"[{unit.tag}] training {unit.members()} together")
    if config.jobs > 1 and len(units) > 1:
        if any(ROW_KINDS[name][0] != "vae" for name, _ in pending):
            work.coherence_judge(log)  # fitted once here rather than once per worker
        run_in_workers(work, units, config.jobs, log)
    else:
        for unit in units:
            run_unit(work, unit, progress, log)
    return write_outputs(config.out, command)


@dataclass
class Worker:
    """A worker process's state: the reproduction it runs units of (pairs, groups), and whether it is running one."""

    work: Reproduction
    busy: bool = False

    def stop(self, signum: int, frame: Any) -> None:
        """SIGTERM outside training: abandon the unit being run (an evaluation), as an exception that
        travels back to the parent like any other; an idle worker waits for its stop message."""
        if self.busy:
            raise KeyboardInterrupt

    def serve(self, threads: int, conn: Connection) -> None:
        """Run the units that arrive on ``conn`` until None (or a closed pipe); answer each with
        ("done", unit) or ("failed", the exception)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self.stop)
        torch.set_num_threads(threads)
        warnings.showwarning = note_warning("reproduce")  # a spawned worker prints warnings as the parent does
        while True:
            try:
                unit = conn.recv()
            except EOFError:
                return
            if unit is None:
                return
            self.busy = True
            try:
                run_unit(self.work, unit, False, write_line)
                reply: tuple[str, Any] = ("done", unit)
            except BaseException as exc:  # raised in the parent
                reply = ("failed", exc)
            finally:
                self.busy = False
            try:
                conn.send(reply)
            except (BrokenPipeError, EOFError):
                return
            except Exception:  # an exception that does not pickle travels as its text
                conn.send(("failed", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))


def serve(work: Reproduction, threads: int, conn: Connection) -> None:
    """A worker process's entry point."""
    Worker(work).serve(threads, conn)


@dataclass
class Pool:
    """``jobs`` worker processes, each given one unit (a pair or a group) at a time over its own pipe."""

    work: Reproduction
    jobs: int
    threads: int
    processes: list[Any] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        for _ in range(self.jobs):
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(self.work, self.threads, theirs))
            process.start()
            theirs.close()
            self.processes.append(process)
            self.pipes.append(ours)

    def run(self, pending: list[Unit], log: Callable[[str], None]) -> None:
        """Hand out ``pending`` in order, never more than one unit a worker; raise the first failure."""
        queue = list(reversed(pending))
        idle = list(range(self.jobs))
        running: dict[Connection, int] = {}
        while queue or running:
            while queue and idle:
                worker = idle.pop(0)
                self.pipes[worker].send(queue.pop())
                running[self.pipes[worker]] = worker
            ready = wait([*running, *(self.processes[w].sentinel for w in running.values())])
            answered = [conn for conn in running if conn in ready or conn.poll()]
            if not answered:
                dead = next(self.processes[w] for w in running.values() if self.processes[w].sentinel in ready)
                raise RuntimeError(f"worker {dead.pid} exited with code {dead.exitcode}")
            for conn in answered:
                status, payload = conn.recv()
                idle.append(running.pop(conn))
                if status != "done":
                    raise payload
                log(f"[{unit_tag(self.work, payload)}] done")

    def stop(self, log: Callable[[str], None]) -> None:
        """Ask every worker to stop (SIGTERM: a training run checkpoints and stops, an evaluation is
        abandoned), let them finish that, and kill any still alive after ``STOP_GRACE_SECONDS``:
        never at once, since a run killed mid-step loses the steps since its last checkpoint. Signals to this process while it waits are ignored (the workers are already stopping)."""
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for process in self.processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)
            self.close(STOP_GRACE_SECONDS, log)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def close(self, grace: float | None, log: Callable[[str], None]) -> None:
        """Tell every worker to exit once it is idle, wait up to ``grace`` seconds (None: for ever)
        for them, then kill any still alive."""
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:  # the worker has gone
                pass
        deadline = None if grace is None else time.monotonic() + grace
        for process in self.processes:
            process.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                log(f"worker {process.pid} did not stop within {grace:g} s; killing it")
                process.kill()
                process.join()
        for pipe in self.pipes:
            pipe.close()
        self.processes, self.pipes = [], []


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_in_workers(work: Reproduction, pending: list[Unit], jobs: int, log: Callable[[str], None]) -> None:
    """Run the pending units ((row, seed) pairs, groups) in up to ``jobs`` worker processes, handing
    each worker the next unit when it finishes one, each with ``train.threads`` threads (default: the
    cores this process may use, shared out). The first failure, Ctrl-C or SIGTERM stops every worker
    (``Pool.stop``) and is raised here once they have exited; no unit starts after it, and every
    run keeps its last checkpoint, so the same command resumes."""
    jobs = min(jobs, len(pending))
    threads = work.config.train.threads or max(1, usable_cores() // jobs)
    groups = sum(isinstance(unit, Group) for unit in pending)
    log(f"running {sum(map(unit_size, pending))} models" + (f" ({groups} group{'s' * (groups > 1)})" if groups else "")
        + f" in {jobs} worker processes, {threads} thread{'s' if threads > 1 else ''} each")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    pool = Pool(work, jobs, threads)
    try:
        pool.start()
        pool.run(pending, log)
    except BaseException:
        pool.stop(log)
        raise
    finally:
        pool.close(None, log)
        signal.signal(signal.SIGTERM, previous)
