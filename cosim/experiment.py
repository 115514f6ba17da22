"""A run: epochs of one scenario written to a run directory that survives being killed.

Run directory::

    config.yaml      the fully resolved config (every default, absolute paths)
    metrics.csv      one row per finished epoch (deterministic: same config + seed => same file)
    timing.csv       wall-clock seconds per epoch (machine dependent, hence kept apart)
    checkpoint.pt    state after the last checkpointed epoch (written atomically)
    comm_*.csv       CommMix's N x N matrices, cumulative up to the last checkpoint

Running again into the same directory resumes after the last checkpoint: rows of epochs after
it are dropped and recomputed, so a run killed at any moment ends with the same files as an
uninterrupted one. A directory holding a different configuration is refused (``train.epochs``
may grow: that extends a run).
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from cosim.config import ScenarioConfig, dump_config
from cosim.contracts import Controller, EpochContext, Hook
from cosim.controllers import IDMController, RandomController
from cosim.engine import Engine
from cosim.commmix import MATRIX_FILES, CommMix
from cosim.sac_controller import SACController
from cosim.traffic.sumo import SumoTraffic
from cosim.v2v import ChannelHook
from learners import atomic_torch_save

CHECKPOINT_VERSION = 1


class RunDirError(Exception):
    """The output directory cannot be used for this run (message says why and what to do)."""


def make_controller(config: ScenarioConfig) -> Controller:
    """The controller named by ``config.learner``."""
    if config.learner == "idm":
        return IDMController(config.idm, config.env.accel_range, config.sumo.step_length, config.seed)
    if config.learner == "random":
        return RandomController(config.env.accel_range, config.seed)
    if config.learner == "sac":
        return SACController(config)
    raise ValueError(f"unknown learner {config.learner!r}")


def make_hooks(config: ScenarioConfig, controller: Controller) -> list[Hook]:
    """The engine hooks of a run: the V2V channel, then CommMix for SAC agents (also with
    ``comm.exchange: none``, so that every method's metrics have the same columns)."""
    hooks: list[Hook] = [ChannelHook()]
    if isinstance(controller, SACController):
        hooks.append(CommMix(config, controller))
    return hooks


# ---------------------------------------------------------------------------- files
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def read_rows(path: Path) -> list[dict[str, str]]:
    """Complete rows of a CSV written by :class:`CsvLog` (a torn last line is ignored)."""
    text = path.read_text() if path.is_file() else ""
    return list(csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1])))


class CsvLog:
    """An append-only CSV; every row is flushed and fsynced before the call returns.

    Opening it with ``keep_rows=k`` cuts the file to its first k rows (and any torn last line),
    which is how a resumed run forgets epochs after its checkpoint.
    """

    def __init__(self, path: Path, keep_rows: int):
        self.path = path
        rows = read_rows(path)
        self.columns: list[str] | None = list(rows[0]) if rows else None
        complete = not path.is_file() or path.read_bytes().endswith(b"\n") or path.stat().st_size == 0
        if len(rows) != keep_rows or not complete:
            self._rewrite(rows[:keep_rows])

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            self.columns = None
        _atomic_write_bytes(self.path, buf.getvalue().encode())

    def append(self, row: dict[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        elif list(row) != self.columns:
            raise RuntimeError(f"{self.path.name}: columns changed from {self.columns} to {list(row)}")
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())


# ---------------------------------------------------------------------------- run directory
def _comparable(data: dict) -> dict:
    data = yaml.safe_load(yaml.safe_dump(data))
    data.get("train", {}).pop("epochs", None)
    return data


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def prepare_run_dir(config: ScenarioConfig, out: Path, restart: bool = False) -> None:
    """Create ``out`` or check that it holds this run; write the resolved config."""
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.yaml"
    if restart:
        for name in ("config.yaml", "metrics.csv", "timing.csv", "checkpoint.pt", *MATRIX_FILES.values()):
            (out / name).unlink(missing_ok=True)
    if cfg_path.is_file():
        old = _comparable(yaml.safe_load(cfg_path.read_text()) or {})
        new = _comparable(config.model_dump(mode="json"))
        if old != new:
            keys = ", ".join(_diff_keys(old, new)[:8])
            raise RunDirError(f"{out} holds a run with a different configuration (differs in: {keys}); "
                              "use another --out, or --restart to discard it")
    dump_config(config, cfg_path)


def save_checkpoint(path: Path, epochs_done: int, controller: Controller, hooks: list[Hook]) -> None:
    atomic_torch_save({"version": CHECKPOINT_VERSION, "epochs_done": epochs_done,
                       "controller": controller.state_dict(),
                       "hooks": [hook.state_dict() for hook in hooks]}, path)


def load_checkpoint(path: Path, controller: Controller, hooks: list[Hook]) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("version") != CHECKPOINT_VERSION:
        raise RunDirError(f"{path}: checkpoint version {state.get('version')} is not {CHECKPOINT_VERSION}")
    controller.load_state_dict(state["controller"])
    saved = state.get("hooks", [])
    if len(saved) != len(hooks):
        raise RunDirError(f"{path}: checkpoint holds the state of {len(saved)} hooks, this run has {len(hooks)}")
    for hook, hook_state in zip(hooks, saved):
        hook.load_state_dict(hook_state)
    return int(state["epochs_done"])


def write_artifacts(out: Path, hooks: list[Hook]) -> None:
    """The files hooks keep in the run directory (e.g. CommMix's N x N matrices), atomically."""
    for hook in hooks:
        for name, text in hook.artifacts().items():
            _atomic_write_bytes(out / name, text.encode())


# ---------------------------------------------------------------------------- the run
def run_experiment(config: ScenarioConfig, out: Path, *, restart: bool = False,
                   progress: bool | None = None) -> Path:
    """Run (or resume) ``config.train.epochs`` epochs into ``out``; returns the metrics path."""
    out = Path(out)
    prepare_run_dir(config, out, restart)
    controller = make_controller(config)
    hooks = make_hooks(config, controller)
    ckpt = out / "checkpoint.pt"
    done = load_checkpoint(ckpt, controller, hooks) if ckpt.is_file() else 0
    metrics = CsvLog(out / "metrics.csv", keep_rows=done)
    timing = CsvLog(out / "timing.csv", keep_rows=done)
    epochs = config.train.epochs
    if done >= epochs:
        return metrics.path
    disable = None if progress is None else not progress
    with SumoTraffic(config.sumo, config.network, config.vehicles, config.env.n_agents,
                     config.env.observe_distance) as traffic:
        engine = Engine(config, traffic, controller, hooks)
        bar = tqdm(total=epochs, initial=done, desc=config.name, unit="epoch", disable=disable)
        steps = tqdm(total=config.env.horizon, desc="steps", leave=False, disable=disable, mininterval=0.5)

        def on_step(ctx: EpochContext) -> None:
            steps.update(1)

        engine.on_step = on_step
        for epoch in range(done, epochs):
            steps.reset()
            started = time.perf_counter()
            row = engine.run_epoch(epoch)
            wall = time.perf_counter() - started
            metrics.append(row)
            timing.append({"epoch": epoch, "wall_time_s": round(wall, 3),
                           "steps_per_s": round(row["steps"] / wall, 1) if wall > 0 else 0.0})
            if (epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == epochs:
                write_artifacts(out, hooks)
                save_checkpoint(ckpt, epoch + 1, controller, hooks)
            bar.set_postfix(reward=f"{row['avg_reward']:.3f}", speed=f"{row['mean_speed']:.1f}")
            bar.update(1)
        steps.close()
        bar.close()
    return metrics.path
