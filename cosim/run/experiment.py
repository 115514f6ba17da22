"""A run: epochs of one scenario written to a run directory that survives being killed.

The run directory (its files, the resume rules and the checks done before resuming) is
``cosim/run/rundir.py``. Running again into the same directory resumes after the last checkpoint:
rows of epochs after it are dropped and recomputed, so a run killed at any moment ends with the
same files as an uninterrupted one. A directory holding a different configuration is refused
(``train.epochs`` may grow: that extends a run).

The first SIGINT/SIGTERM stops at the end of the current simulation step when the checkpoint
covers every finished epoch (always with ``train.checkpoint_every: 1``, the default): the epoch
in progress is dropped and redone on resume. Otherwise (epochs since the last checkpoint, or
the evaluation that precedes a checkpoint) it lets the epoch finish and writes the checkpoint
first. Either way it exits with :class:`~cosim.run.signals.Interrupted`. A second signal stops at
once, leaving the directory as it was after the last checkpoint (still resumable).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from cosim.config import ScenarioConfig, dump_config
from cosim.sim.contracts import Controller, EpochContext, Hook
from cosim.plugins.controller_registry import ControllerError, make_controller, resolve  # noqa: F401 - ControllerError: API
from cosim.plugins.loading import PluginError, blame
from cosim.sim.engine import Engine
from cosim.sim.commmix import CommMix
from cosim.sim.sac_controller import SACController
from cosim.run.signals import StopSignals
from cosim.traffic.sumo import SumoTraffic
from cosim.sim.v2v import ChannelHook
from cosim.run.rundir import (CHECKPOINT_VERSION, CsvLog, Interrupted, RunDir, RunDirError,  # noqa: F401
                          atomic_write_text, load_checkpoint, open_run_dir, read_rows)


class RunError(Exception):
    """The run cannot start or go on with these settings (a user error; message says why)."""


@contextlib.contextmanager
def plugin_failures() -> Iterator[None]:
    """A plug-in (mixing rule, medium) that fails while the run goes on is a :class:`RunError`
    naming it (exit status 2), not an internal error: the registries' own checks
    (:class:`~cosim.plugins.loading.PluginError`), and any exception raised in a plug-in's code,
    e.g. in a SimPy callback it scheduled, where no check of ours is on the stack."""
    try:
        yield
    except PluginError as exc:
        raise RunError(str(exc)) from exc
    except (RunError, RunDirError):
        raise
    except Exception as exc:
        culprit = blame(exc)
        if culprit is None:
            raise
        label, where = culprit
        raise RunError(f"{label} failed in its own code ({where}): {type(exc).__name__}: {exc}") from exc


def make_hooks(config: ScenarioConfig, controller: Controller) -> list[Hook]:
    """The engine hooks of a run: the V2V channel, then CommMix for SAC agents (also with
    ``comm.exchange: none``, so that every method's metrics have the same columns)."""
    hooks: list[Hook] = [ChannelHook()]
    if isinstance(controller, SACController):
        hooks.append(CommMix(config, controller))
    return hooks


# ---------------------------------------------------------------------------- resources
def estimate_memory(config: ScenarioConfig) -> dict[str, float]:
    """Bytes a run will need at most, by part (replay buffers, networks, SUMO); an estimate."""
    from cosim.traffic.observation import OBS_DIM

    n = config.env.n_agents
    parts: dict[str, float] = {}
    if config.learner == "sac":
        sac = config.sac
        item = 8 if sac.dtype == "float64" else 4
        act = 1
        parts["replay buffers"] = float(n) * sac.buffer_size * (2 * OBS_DIM + act + 3) * item

        def mlp(inp: int, widths, out: int) -> int:
            sizes = [inp, *widths, out]
            return sum(a * b + b for a, b in zip(sizes, sizes[1:]))

        policy = mlp(OBS_DIM, sac.hidden, 2 * act)
        q = mlp(OBS_DIM + act, sac.q_hidden, 1)
        # policy: params, grads, 2 Adam moments; twin Q: online, target, grads, 2 Adam moments
        params = 4 * policy + 2 * q * 5
        widest = max([*sac.hidden, *sac.q_hidden])
        activations = sac.batch_size * widest * (len(sac.hidden) + 2 * len(sac.q_hidden)) * 6
        parts["networks"] = float(n) * (params + activations) * item
    sources = [p for p in (config.network.net_file, config.network.nodes, config.network.edges) if p]
    net_bytes = sum(os.path.getsize(p) for p in sources if os.path.isfile(p))
    parts["SUMO"] = 64 * 2**20 + 20.0 * net_bytes + n * 64 * 1024
    return parts


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(x: float) -> str:
    return f"{x / 2**30:.1f} GiB"


def check_memory(config: ScenarioConfig, available: int | None = None) -> None:
    """Refuse settings that need more memory than this machine has, before allocating any."""
    available = physical_memory() if available is None else available
    parts = estimate_memory(config)
    total = sum(parts.values())
    if available and total > 0.9 * available:
        detail = ", ".join(f"{name} {_gib(v)}" for name, v in parts.items() if v >= 2**20)
        raise RunError(f"this run would need about {_gib(total)} of memory ({detail}) and this machine has "
                       f"{_gib(available)}; lower sac.buffer_size, env.n_agents or sac.hidden")


# ---------------------------------------------------------------------------- the run
def _timing_row(epoch: int, phase: str, row: dict, wall: float) -> dict:
    import torch

    return {"epoch": epoch, "phase": phase, "wall_time_s": round(wall, 3),
            "steps_per_s": round(row["steps"] / wall, 1) if wall > 0 else 0.0,
            "threads": torch.get_num_threads()}


def write_artifacts(run: RunDir, hooks: list[Hook]) -> None:
    """The files hooks keep in the run directory (e.g. CommMix's N x N matrices), atomically."""
    for hook in hooks:
        for name, text in hook.artifacts().items():
            run.write_text(name, text)


def init_from_run(controller: Controller, source: Path) -> None:
    """Start the SAC agents from the networks saved in another run's checkpoint (fine-tuning in
    another scenario, e.g. RSM-MASAC Fig. 13: trained with 9 CAVs, driven with more; agent i
    takes saved agent i mod the saved count). Raises :class:`RunError` when it cannot."""
    where = f"--init-from {source}"
    if not isinstance(controller, SACController):
        raise RunError(f"{where}: only learner 'sac' can start from saved policies")
    ckpt = Path(source) / "checkpoint.pt" if Path(source).is_dir() else Path(source)
    if not ckpt.is_file():
        raise RunError(f"{where}: no checkpoint.pt there (a cosim run directory with at least one finished epoch)")
    state = load_checkpoint(ckpt)
    fleet = state["controller"].get("fleet")
    if not isinstance(fleet, dict):
        raise RunError(f"{where}: that run was not trained with learner 'sac'")
    try:
        controller.fleet.load_weights(fleet)
    except (ValueError, IndexError, KeyError) as exc:
        raise RunError(f"{where}: the saved policies do not fit this scenario: {exc}") from None


def evaluate_run(run_dir: Path, epochs: int, checkpoint: Path | None = None, progress: bool | None = None) -> Path:
    """Evaluate a saved run: ``epochs`` evaluation epochs (deterministic policies, no learning,
    no communication) with the run's config and checkpoint; rows go to ``eval.csv`` in the run
    directory (rewritten each time), with the number of training epochs the checkpoint holds."""
    from cosim.config import ConfigError, load_config

    run_dir = Path(run_dir)
    try:
        config = load_config(run_dir / "config.yaml")
    except ConfigError as exc:
        raise RunError("; ".join(exc.lines)) from None
    ckpt = Path(checkpoint) if checkpoint is not None else run_dir / "checkpoint.pt"
    if not ckpt.is_file():
        raise RunError(f"{ckpt}: no checkpoint to evaluate (the run has not finished an epoch)")
    with plugin_failures():
        state = load_checkpoint(ckpt)
        controller = make_controller(config)
        hooks = make_hooks(config, controller)
        controller.load_state_dict(state["controller"])
        for hook, hook_state in zip(hooks, state["hooks"]):
            hook.load_state_dict(hook_state)
        rows = []
        with StopSignals.install(config.name) as stop, \
                SumoTraffic(config.sumo, config.network, config.vehicles, config.env.n_agents,
                            config.env.observe_distance) as traffic:
            engine = Engine(config, traffic, controller, hooks)
            for k in tqdm(range(epochs), desc=f"eval {config.name}", unit="epoch",
                          disable=None if progress is None else not progress):
                stop.check()
                rows.append({"checkpoint_epochs": state["epochs_done"], **engine.run_epoch(k, phase="eval")})
    out = run_dir / "eval.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out, buf.getvalue())
    return out


def run_experiment(config: ScenarioConfig, out: Path, *, restart: bool = False, force: bool = False,
                   progress: bool | None = None, init_from: Path | None = None) -> Path:
    """Run (or resume) ``config.train.epochs`` epochs into ``out``; returns the metrics path.

    Raises :class:`RunDirError` (the directory cannot be used; nothing changed), :class:`RunError`
    (settings that cannot run), :class:`Interrupted` (SIGINT/SIGTERM; the directory is resumable).
    """
    out = Path(out)
    check_memory(config)
    resolve(config.learner)  # a learner that cannot be loaded fails before the run directory is touched
    with StopSignals.install(config.name) as stop:
        stop.check()
        run = open_run_dir(config, out, restart=restart, force=force)
        try:
            for note in run.notes:
                print(f"note: {note}", file=sys.stderr)
            dump_config(config, out / "config.yaml")
            with plugin_failures():
                _run_epochs(config, run, stop, progress, init_from)
        finally:
            run.close()
    return run.metrics.path


def _run_epochs(config: ScenarioConfig, run: RunDir, stop: StopSignals, progress: bool | None,
                init_from: Path | None = None) -> None:
    controller = make_controller(config)
    hooks = make_hooks(config, controller)
    stop.check()
    done = run.done
    if init_from is not None and run.state is None:  # a resumed run continues from its own checkpoint
        init_from_run(controller, init_from)
    if run.state is not None:
        controller.load_state_dict(run.state["controller"])
        saved = run.state["hooks"]
        if len(saved) != len(hooks):
            raise RunDirError(f"{run.checkpoint_path}: checkpoint holds the state of {len(saved)} hooks, "
                              f"this run has {len(hooks)}; use --restart to discard the run")
        for hook, hook_state in zip(hooks, saved):
            hook.load_state_dict(hook_state)
    epochs = config.train.epochs
    if done >= epochs:
        return
    disable = None if progress is None else not progress
    with SumoTraffic(config.sumo, config.network, config.vehicles, config.env.n_agents,
                     config.env.observe_distance) as traffic:
        engine = Engine(config, traffic, controller, hooks)
        bar = tqdm(total=epochs, initial=done, desc=config.name, unit="epoch", disable=disable)
        steps = tqdm(total=config.env.horizon, desc="steps", leave=False, disable=disable, mininterval=0.5)

        checkpointed = done  # training epochs covered by the checkpoint on disk
        discard = False  # whether a signal may end the training epoch in progress at a step

        def on_step(ctx: EpochContext) -> None:
            steps.update(1)
            if discard and stop.signum is not None and ctx.phase == "train":
                raise Interrupted(stop.signum)  # a safe point: between two steps, in Python

        engine.on_step = on_step
        stop.check()
        stop.armed = True
        for epoch in range(done, epochs):
            steps.reset()
            started = time.perf_counter()
            # Nothing finished is lost if the epoch in progress is dropped when the checkpoint
            # covers every epoch before it: then a signal stops at the end of the current step
            # and the resume redoes this epoch. Otherwise the epoch and its checkpoint finish.
            discard = epoch == checkpointed
            stop.notice = (f"stopping at the end of this step; epoch {epoch} is redone on resume" if discard
                           else "stopping after the current epoch and its checkpoint")
            try:
                row = engine.run_epoch(epoch)
            except Interrupted:
                steps.close()
                bar.close()
                raise
            discard = False
            evaluates = bool(config.train.eval_every) and (epoch + 1) % config.train.eval_every == 0
            stop.notice = f"stopping after {'the evaluation and ' if evaluates else ''}the checkpoint of epoch {epoch}"
            wall = time.perf_counter() - started
            if epoch == done and not row.get("mean_active_agents", 1):
                raise RunError(
                    f"epoch {epoch}: no vehicle of vType {config.vehicles.cav_type!r} was bound to an agent "
                    f"in {row['steps']} steps, so there is nothing to control or learn; check "
                    "vehicles.cav_type, the route files and env.horizon")
            run.metrics.append(row)
            run.timing.append(_timing_row(epoch, "train", row, wall))
            every = config.train.eval_every
            if evaluates:
                for k in range(config.train.eval_epochs):
                    steps.reset()
                    started = time.perf_counter()
                    eval_row = engine.run_epoch(((epoch + 1) // every - 1) * config.train.eval_epochs + k,
                                                phase="eval")
                    eval_row["epoch"] = epoch  # the training epoch this evaluation followed
                    run.metrics.append(eval_row)
                    run.timing.append(_timing_row(epoch, "eval", eval_row, time.perf_counter() - started))
                    bar.set_postfix(eval_reward=f"{eval_row['avg_reward']:.3f}")
            last = epoch + 1 == epochs
            if (epoch + 1) % config.train.checkpoint_every == 0 or last or stop.signum is not None:
                write_artifacts(run, hooks)
                run.save(epoch + 1, controller.state_dict(), [hook.state_dict() for hook in hooks])
                checkpointed = epoch + 1
            reward = row["avg_reward"]
            bar.set_postfix(reward=f"{reward:.3f}" if math.isfinite(reward) else str(reward),
                            speed=f"{row['mean_speed']:.1f}")
            bar.update(1)
            if stop.signum is not None and not last:
                steps.close()
                bar.close()
                raise Interrupted(stop.signum)
        steps.close()
        bar.close()
