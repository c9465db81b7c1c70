"""Run folders and checkpoints: safetensors weights, JSON config and state, written atomically.

A run folder holds

    config.json                  model, training and data configs (written when the run starts)
    metrics.jsonl                one JSON object per epoch
    checkpoints/latest           the name of the newest complete checkpoint
    checkpoints/step-<N>/        model.safetensors, training_state.safetensors, state.json

A checkpoint is written into a fresh folder, each file flushed and synced, and becomes current
only when ``latest`` is atomically replaced, so a crash at any moment leaves the previous
checkpoint intact. ``state.json`` records the SHA-256 of both tensor files, so a truncated or
altered checkpoint is refused. No pickle is ever loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jmvae.config import AdversarialConfig, ModelConfig, TrainConfig
from jmvae.data.paired import DataInfo
from jmvae.files import write_atomic
from jmvae.errors import CheckpointError

FORMAT = "jmvae-run"
VERSION = 1


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run: what is trained, how, and on which data (and, for a GAN
    variant, its adversarial game)."""

    model: ModelConfig
    train: TrainConfig
    data: DataInfo
    adversarial: AdversarialConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"format": FORMAT, "version": VERSION, "model": self.model.to_dict(), "train": self.train.to_dict(), "data": self.data.to_dict()}
        if self.adversarial is not None:
            out["adversarial"] = self.adversarial.to_dict()
        return out

    @property
    def display_name(self) -> str:
        """The run's row name: ``jmvae-kl(alpha=0.1)``, or its GAN variant's ``jmvae-gan(alpha=0.1)``."""
        return self.adversarial.display_name(self.model) if self.adversarial else self.model.display_name

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: Path) -> RunConfig:
        if raw.get("format") != FORMAT:
            raise CheckpointError(f"{where}: not a jmvae run config (format {raw.get('format')!r})")
        if raw.get("version") != VERSION:
            raise CheckpointError(f"{where}: run format version {raw.get('version')}, this jmvae reads version {VERSION}")
        try:
            model, train, adversarial = _with_adversarial_apart(raw)
            return cls(ModelConfig.from_dict(model), TrainConfig.from_dict(train), DataInfo.from_dict(raw["data"]), adversarial)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: invalid run config ({exc})") from None


def _with_adversarial_apart(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], AdversarialConfig | None]:
    """The model and training dicts of a saved config, and its adversarial game. Configs written
    before ``AdversarialConfig`` kept it in the model (``adversarial``, ``gan_weight``) and the
    training settings (``gan_real_label``, with Adam's betas in ``betas``): read either way."""
    model, train = dict(raw["model"]), dict(raw["train"])
    was_adversarial, weight = model.pop("adversarial", False), model.pop("gan_weight", 1.0)
    real_label = train.pop("gan_real_label", 1.0)
    if "adversarial" in raw:
        return model, train, AdversarialConfig.from_dict(raw["adversarial"])
    if was_adversarial:
        return model, train, AdversarialConfig(weight, real_label, tuple(train.get("betas", (0.5, 0.999))))
    return model, train, None


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist; is this a jmvae run folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def save_run_config(run_dir: Path, run: RunConfig) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", run.to_dict())


RUN_FILES = ("metrics.jsonl", "evaluation.json", "config.json", "divergence.json")
"""A run folder's own files beside checkpoints/ (figures/ and anything else are left alone)."""


def clear_run(run_dir: Path) -> None:
    """Remove the run in ``run_dir`` (its checkpoints and files) so a new one can start there."""
    shutil.rmtree(Path(run_dir) / "checkpoints", ignore_errors=True)
    for name in RUN_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)


def remove_unstarted_run(run_dir: Path, remove_folder: bool = False) -> None:
    """Take back what a run that never wrote a checkpoint wrote (its config and metrics), so the
    folder does not look like a run that a retry must resume or overwrite; with
    ``remove_folder``, the folder too if that leaves it empty."""
    run_dir = Path(run_dir)
    if latest_checkpoint(run_dir) is not None:
        raise CheckpointError(f"{run_dir} holds a checkpoint; it is not an unstarted run")
    clear_run(run_dir)
    if remove_folder:
        try:
            run_dir.rmdir()
        except OSError:  # something else is in it
            pass


def load_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / "config.json"
    return RunConfig.from_dict(read_json(path), path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    run_dir: Path,
    weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    rng: dict[str, torch.Tensor],
    commit: bool = True,
) -> Path:
    """Write a checkpoint of the weights (the model's state dict, and whatever is trained beside
    it under its own prefix), optimizer, RNG states and ``state`` (epoch, step, ...).

    ``commit`` False writes the checkpoint's folder but leaves ``latest`` and the older
    checkpoints alone until ``commit_checkpoint`` (a group of runs commits all its members' only
    once every member's is written; ``jmvae.training.group``).

    If writing fails (a full disk, a folder gone read-only), the partial folder is removed, the
    previous checkpoint stays current and ``CheckpointError`` says why.
    """
    folder = checkpoint_folder(run_dir, state["step"])
    opt_tensors, opt_meta = flatten_optimizer(optimizer)
    files = {"model.safetensors": weights,
             "training_state.safetensors": {**opt_tensors, **{f"rng/{k}": v for k, v in rng.items()}}}
    try:
        _write_checkpoint(folder, files, {**state, "optimizer": opt_meta})
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise CheckpointError(
            f"could not write the checkpoint {folder} ({exc.strerror or exc}); free some space or fix the "
            "folder's permissions, then resume: the previous checkpoint is intact"
        ) from None
    if commit:
        commit_checkpoint(run_dir, state["step"])
    return folder


def checkpoint_folder(run_dir: Path, step: int) -> Path:
    """The folder of the checkpoint at ``step`` (whether or not it exists)."""
    return Path(run_dir) / "checkpoints" / f"step-{step:09d}"


def commit_checkpoint(run_dir: Path, step: int) -> None:
    """Point ``latest`` at the written checkpoint of ``step`` and remove the older checkpoints."""
    folder = checkpoint_folder(run_dir, step)
    write_atomic(folder.parent / "latest", folder.name.encode())
    for old in folder.parent.glob("step-*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)


def checkpoint_bytes(parameters: list[torch.nn.Parameter]) -> int:
    """About how many bytes one checkpoint of these parameters takes (weights and Adam's two moments)."""
    return 3 * sum(p.numel() * p.element_size() for p in parameters) + (1 << 20)


def check_free_space(run_dir: Path, parameters: list[torch.nn.Parameter]) -> None:
    """Refuse to start a run whose checkpoints cannot fit on the disk (two are on disk while one is written)."""
    need = 2 * checkpoint_bytes(parameters)
    free = shutil.disk_usage(run_dir).free
    if free < need:
        raise CheckpointError(
            f"{run_dir}: {free / 2**20:.0f} MiB free on this disk, but checkpoints of this model need about "
            f"{need / 2**20:.0f} MiB; free some space or choose another run folder", ("run_dir",)
        )


def _write_checkpoint(folder: Path, files: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> None:
    """Write each tensor file and state.json (with their checksums) into a fresh ``folder``."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, tensors in files.items():
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, folder / name)
        os.chmod(folder / name, 0o666 & ~current_umask())  # safetensors writes 0600; a shared run must be readable
        with open(folder / name, "rb+") as f:
            os.fsync(f.fileno())
    meta = {"format": FORMAT, "version": VERSION, **state, "sha256": {n: file_sha256(folder / n) for n in files}}
    write_json(folder / "state.json", meta)


def current_umask() -> int:
    """The process's umask (the mode bits new files do not get), read without changing it where
    /proc says it, else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    if not folder.is_dir():
        raise CheckpointError(f"{pointer} names {folder.name}, which is missing; the run folder is damaged")
    return folder


def load_tensors(path: Path, expected_sha: str | None) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete")
    if expected_sha is not None and file_sha256(path) != expected_sha:
        raise CheckpointError(f"{path} does not match the checksum in state.json: truncated or modified")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(model weights, training-state tensors, state) of a checkpoint folder, each verified."""
    meta = read_json(folder / "state.json")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{folder}: checkpoint format {meta.get('format')!r} v{meta.get('version')}, expected {FORMAT} v{VERSION}")
    sha = meta.get("sha256", {})
    weights = load_tensors(folder / "model.safetensors", sha.get("model.safetensors"))
    training = load_tensors(folder / "training_state.safetensors", sha.get("training_state.safetensors"))
    return weights, training, meta


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: Path) -> None:
    """Load ``weights`` into ``model``, naming any missing, unexpected or mis-shaped tensor."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in weights and weights[k].shape != v.shape]
    if missing or extra or shapes:
        raise CheckpointError(
            f"{where}: weights do not fit this model (missing {missing[:3]}, unexpected {extra[:3]}, shapes {shapes[:3]})"
        )
    model.load_state_dict(weights)


def flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state dict as named tensors plus JSON (no pickle)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim/{pid}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, pid, key = name.split("/", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split("/", 1)
        state.setdefault(int(pid), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}
