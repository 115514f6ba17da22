"""Sweeps: one base scenario, many members (grid x zip x seeds), one run directory each.

A sweep file (YAML)::

    base: ../figure8.yaml           # the scenario, relative to this file
    set:                             # overrides every member gets (any --set key)
      train.epochs: 100
    grid:                            # every combination of these values
      comm.method: [isac, rsm_masac]
    zip:                             # these lists side by side (equal lengths); or a list of such groups
      comm.segments: [1, 4]
      comm.replicas: [1, 3]
    seeds: [0, 1, 2]                 # the key `seed`, varied last

Members are ``grid x zip x seeds``. Every member is loaded and validated before anything runs;
one bad value fails the whole sweep (exit 2) naming the member and the key. Each member runs
as ``python -m cosim.cli.member run BASE --set ... --out DIR/<member>`` in a process of its own (libsumo
allows one simulation per process), so it inherits everything ``cosim run`` does: resume from
the checkpoint, refusal of a foreign directory, a clean stop on SIGINT/SIGTERM.

``DIR/sweep.csv`` is the index: one row per member with its status (pending, running, done,
failed), wall time (summed over attempts), exit status, error and parameters; it is rewritten
atomically at every change. Running the sweep again skips members that are done (with the same
resolved config) and reruns the others: a member killed half-way resumes from its checkpoint.
A failing member is recorded and the others go on. Output of member ``m`` goes to
``DIR/logs/m.log``.

Backends: ``local`` (default; ``--workers N`` processes at a time) and ``ray`` (``--backend
ray [--address ADDR]``; needs the ``ray`` extra and a filesystem that every node sees at the
same path).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.run.signals import Interrupted, StopSignals, say

STATUSES = ("pending", "running", "done", "failed")
INDEX = "sweep.csv"
FIXED_COLUMNS = ("member", "status", "wall_time_s", "exit_status", "error", "config_sha256", "run_dir")
SWEEP_KEYS = {"base", "name", "set", "grid", "zip", "seeds", "description"}
MAX_NAME = 120


class SweepError(Exception):
    """The sweep file or one of its members is wrong; ``lines`` say which member and key."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class Member:
    name: str
    params: dict[str, Any]          # the swept keys (seed included) -> value
    overrides: list[str]            # --set strings (fixed set + params)
    config_sha256: str = ""
    status: str = "pending"
    wall_time_s: float = 0.0
    exit_status: str = ""
    error: str = ""


@dataclass
class Sweep:
    path: Path
    base: Path
    name: str
    fixed: dict[str, Any]
    keys: list[str]                 # swept keys in column order (seed last)
    members: list[Member] = field(default_factory=list)


# ---------------------------------------------------------------------------- the sweep file
def _format_value(value: Any) -> str:
    """A value as the YAML text of a --set (flow style, one line)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    return text.removesuffix("...").strip()


def _absolute(value: Any, base_dir: Path) -> Any:
    """Path values in the sweep file are relative to the sweep file."""
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str((base_dir / value).resolve())
    if isinstance(value, list):
        return [_absolute(v, base_dir) for v in value]
    return value


def _is_path_value(keypath: list[str]) -> bool:
    from cosim.config.loader import _is_path_key

    return _is_path_key(tuple(keypath))


def _override(key: str, value: Any, base_dir: Path) -> str:
    from cosim.config.loader import _is_path_key

    if _is_path_key(tuple(key.split("."))):
        value = _absolute(value, base_dir)
    return f"{key}={_format_value(value)}"


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        text = "-".join(_slug(v) for v in value)
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = f"{value:.1f}"
    elif isinstance(value, str) and ("/" in value or os.sep in value):
        text = Path(value).stem
    else:
        text = str(value)
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("._")
    return text or "x"


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key's shortest suffix that no other key ends with (``comm.interval`` -> ``interval``)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            cand = ".".join(parts[-n:])
            if not any(other != key and (other == cand or other.endswith("." + cand)) for other in keys):
                out[key] = cand
                break
        else:
            out[key] = key
    return out


def member_name(params: dict[str, Any], short: dict[str, str]) -> str:
    """A filesystem-safe directory name from a member's parameters, e.g. ``interval=8__seed=0``.

    Values are sanitised, never trusted: a path value gives its file stem, every character but
    ASCII letters, digits, ``.``, ``+`` and ``-`` becomes ``_``, leading and trailing ``.`` and
    ``_`` are stripped (an empty result is ``x``), and a name longer than ``MAX_NAME``
    characters is cut and ends in a hash of the whole. So ``../../x``, ``/tmp/x`` or ``.hidden``
    give ``x``, ``x`` and ``hidden``: the name is always one plain path component inside the
    sweep directory (:func:`load_sweep` checks it once more). Two members whose names meet are
    refused.
    """
    if not params:
        return "default"
    name = "__".join(f"{_slug(short[k])}={_slug(v)}" for k, v in params.items())
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:MAX_NAME - 12]}__{digest}"
    return name


def _one_component(name: str) -> bool:
    """Whether ``name`` is one plain path component: no separator, not hidden, ``.`` or ``..``,
    printable, at most ``MAX_NAME`` characters."""
    return (bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")
            and name.isprintable() and len(name) <= MAX_NAME)


def _as_list(value: Any, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise SweepError([f"{where}: must be a non-empty list of values (got {value!r})"])
    return value


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key or not all(key.split(".")) or "=" in key:
        raise SweepError([f"{where}: {key!r} is not a dotted config key (e.g. comm.interval)"])
    return key


def load_sweep(path: str | Path, extra: list[str] | None = None) -> Sweep:
    """Read a sweep file and expand its members (not yet validated: see :func:`validate`).
    ``extra``: ``KEY=VALUE`` overrides from the command line, added to the file's ``set``."""
    from cosim.config.loader import ConfigError, parse_override, read_yaml
    from cosim.config.names import ALLOWED as NAME_ALLOWED
    from cosim.config.names import name_problem

    path = Path(path)
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise SweepError(exc.lines) from None
    unknown = sorted(set(map(str, data)) - SWEEP_KEYS)
    if unknown:
        raise SweepError([f"{path}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(SWEEP_KEYS))})"])
    if not isinstance(data.get("base"), str) or not data["base"].strip():
        raise SweepError([f"{path}: base: required, the scenario file (relative to the sweep file)"])
    base_dir = path.resolve().parent
    base = (base_dir / data["base"]).resolve()
    if not base.is_file():
        raise SweepError([f"{path}: base: scenario file not found: {base}"])
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        raise SweepError([f"{path}: set: must be a mapping of dotted keys to values"])
    for key in fixed:
        _check_key(key, f"{path}: set")
    fixed = dict(fixed)
    for text in extra or []:
        try:
            keypath, value = parse_override(text)
        except ConfigError as exc:
            raise SweepError(exc.lines) from None
        if isinstance(value, str) and _is_path_value(keypath):
            value = str(Path(value).resolve())  # relative to the current directory, as cosim run --set
        fixed[".".join(keypath)] = value

    axes: list[list[dict[str, Any]]] = []  # each axis: a list of {key: value} choices
    keys: list[str] = []
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise SweepError([f"{path}: grid: must be a mapping of dotted keys to lists of values"])
    for key, values in grid.items():
        _check_key(key, f"{path}: grid")
        axes.append([{key: v} for v in _as_list(values, f"{path}: grid.{key}")])
        keys.append(key)
    zips = data.get("zip") or []
    if isinstance(zips, dict):
        zips = [zips]
    if not isinstance(zips, list):
        raise SweepError([f"{path}: zip: must be a mapping of dotted keys to equal-length lists (or a list of them)"])
    for n, group in enumerate(zips):
        if not isinstance(group, dict) or not group:
            raise SweepError([f"{path}: zip[{n}]: must be a mapping of dotted keys to equal-length lists"])
        lists = {_check_key(k, f"{path}: zip"): _as_list(v, f"{path}: zip.{k}") for k, v in group.items()}
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) > 1:
            raise SweepError([f"{path}: zip: lists of different lengths ({', '.join(f'{k}: {n}' for k, n in lengths.items())})"])
        axes.append([dict(zip(lists, combo)) for combo in zip(*lists.values())])
        keys += list(lists)
    if "seeds" in data:
        seeds = _as_list(data["seeds"], f"{path}: seeds")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise SweepError([f"{path}: seeds: must be a list of integers >= 0 (got {seeds!r})"])
        if len(set(seeds)) != len(seeds):
            raise SweepError([f"{path}: seeds: repeated seeds {seeds!r}"])
        axes.append([{"seed": s} for s in seeds])
        keys.append("seed")
    repeated = sorted({k for k in keys if keys.count(k) > 1} | (set(keys) & set(fixed)))
    if repeated:
        raise SweepError([f"{path}: key(s) {', '.join(repeated)} given more than once (set, grid, zip, seeds)"])

    if data.get("name") is not None:  # a label (progress bar, messages), held to the scenario rule
        problem = name_problem(str(data["name"]))
        if problem:
            raise SweepError([f"{path}: name: {problem}; must be {NAME_ALLOWED} (got {data['name']!r})"])
    name = str(data.get("name") or path.stem)
    sweep = Sweep(path=path, base=base, name=name, fixed=fixed, keys=keys)
    short = _short_keys(keys)
    fixed_overrides = [_override(k, v, base_dir) for k, v in fixed.items()]
    seen: dict[str, dict] = {}
    for combo in itertools.product(*axes) if axes else [()]:
        params: dict[str, Any] = {}
        for choice in combo:
            params.update(choice)
        params = {k: params[k] for k in keys}
        mname = member_name(params, short)
        if not _one_component(mname):  # not reached (member_name sanitises): the last guard
            raise SweepError([f"{path}: member {params}: its directory name {mname!r} is not one plain "
                              "path component inside the sweep directory; change the values"])
        if mname in seen:
            raise SweepError([f"{path}: members {seen[mname]} and {params} get the same directory name "
                              f"{mname!r}; make their values differ in letters or digits"])
        seen[mname] = params
        overrides = fixed_overrides + [_override(k, v, base_dir) for k, v in params.items()]
        sweep.members.append(Member(mname, params, overrides))
    return sweep


def _config_hash(config) -> str:
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def validate(sweep: Sweep) -> None:
    """Load every member's config; raise one SweepError naming every bad member and key."""
    from cosim.config import ConfigError, load_config

    lines: list[str] = []
    for member in sweep.members:
        try:
            config = load_config(sweep.base, member.overrides)
        except ConfigError as exc:
            lines += [f"member {member.name}: {line}" for line in exc.lines]
            continue
        member.config_sha256 = _config_hash(config)
    if lines:
        raise SweepError(lines)


# ---------------------------------------------------------------------------- the index
def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 3)) if math.isfinite(value) else str(value)
    if isinstance(value, (list, dict, bool)) or value is None:
        return _format_value(value)
    return str(value)


def read_index(out: Path) -> dict[str, dict[str, str]]:
    path = Path(out) / INDEX
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {row["member"]: row for row in csv.DictReader(fh) if row.get("member")}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError):
        return {}


def write_index(sweep: Sweep, out: Path) -> None:
    from cosim.run.rundir import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *sweep.keys])
    for m in sweep.members:
        writer.writerow([m.name, m.status, f"{m.wall_time_s:.3f}", m.exit_status, m.error, m.config_sha256,
                         m.name, *(_cell(m.params[k]) for k in sweep.keys)])
    atomic_write_text(Path(out) / INDEX, buf.getvalue())


def merge_index(sweep: Sweep, out: Path) -> None:
    """Carry status and wall time over from an earlier ``sweep.csv`` (same member, same config)."""
    old = read_index(out)
    for m in sweep.members:
        row = old.get(m.name)
        if not row:
            continue
        try:
            m.wall_time_s = float(row.get("wall_time_s") or 0)
        except ValueError:
            m.wall_time_s = 0.0
        same = row.get("config_sha256") == m.config_sha256
        if row.get("status") == "done" and same and (out / m.name / "metrics.csv").is_file():
            m.status, m.exit_status = "done", row.get("exit_status", "0")
        else:  # running (killed), failed or pending: run (resume) it again
            m.status = "pending"
            m.error = row.get("error", "") if row.get("status") == "failed" else ""


# ---------------------------------------------------------------------------- running members
def member_command(sweep: Sweep, member: Member, out: Path, threads: int = 1) -> list[str]:
    """The command line of one member: ``cosim run`` with its overrides and its share of the
    cores (``--threads``)."""
    args = [sys.executable, "-m", "cosim.cli.member", "run", str(sweep.base),
            "--out", str(out / member.name), "--no-progress", "--threads", str(threads)]
    for text in member.overrides:
        args += ["--set", text]
    return args


def _last_error(log: Path, status: int) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    text = (errors[-1] if errors else (lines[-1] if lines else "")).removeprefix("error: ").strip()
    if status < 0:
        text = f"killed by signal {-status}" + (f": {text}" if text else "")
    return text[:500] or f"exit status {status}"


class _LocalBackend:
    """Members as child processes, at most ``workers`` at a time, polled from this thread."""

    def __init__(self, workers: int):
        from cosim.run.threads import choose_threads

        self.workers = max(1, workers)
        self.threads = choose_threads(workers=self.workers)  # each member's share of the cores
        self.procs: dict[str, tuple[subprocess.Popen, Any]] = {}

    def capacity(self) -> int:
        return self.workers - len(self.procs)

    def start(self, sweep: Sweep, member: Member, out: Path) -> None:
        log = out / "logs" / f"{member.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "a", encoding="utf-8")
        command = member_command(sweep, member, out, self.threads)
        fh.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n")
        fh.flush()
        env = dict(os.environ, COSIM_SWEEP_PARENT=str(os.getpid()))
        # a session of its own: a Ctrl-C reaches the sweep only, which passes one signal on
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.procs[member.name] = (proc, fh)

    def poll(self) -> list[tuple[str, int]]:
        finished = []
        for name, (proc, fh) in list(self.procs.items()):
            code = proc.poll()
            if code is not None:
                fh.close()
                del self.procs[name]
                finished.append((name, code))
        return finished

    def signal_all(self, signum: int) -> None:
        for proc, _ in self.procs.values():
            try:
                proc.send_signal(signum)
            except OSError:
                pass


class _RayBackend:
    """Members as Ray tasks (each runs ``python -m cosim run`` on its node)."""

    def __init__(self, workers: int, address: str | None):
        import ray

        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        self.workers = workers if workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.refs: dict[Any, str] = {}
        self.task = ray.remote(num_cpus=1, max_retries=0)(_ray_member)

    def capacity(self) -> int:
        return self.workers - len(self.refs)

    def start(self, sweep: Sweep, member: Member, out: Path) -> None:
        log = out / "logs" / f"{member.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        # a Ray member asks for one CPU, so it runs one torch thread
        self.refs[self.task.remote(member_command(sweep, member, out, 1)[1:], str(log))] = member.name

    def poll(self) -> list[tuple[str, int]]:
        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        out = []
        for ref in ready:
            name = self.refs.pop(ref)
            try:
                out.append((name, int(self.ray.get(ref))))
            except Exception:  # noqa: BLE001 - the task itself died
                out.append((name, 1))
        return out

    def signal_all(self, signum: int) -> None:
        for ref in list(self.refs):
            self.ray.cancel(ref)


def _ray_member(args: list[str], log: str) -> int:
    with open(log, "a", encoding="utf-8") as fh:
        return subprocess.run([sys.executable, *args], stdout=fh, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


def run_sweep(sweep: Sweep, out: Path, *, workers: int = 1, backend: str = "local",
              address: str | None = None, progress: bool | None = None, poll_s: float = 0.2) -> int:
    """Run the members that are not done; returns the number of failed members.

    Raises :class:`Interrupted` (SIGINT or SIGTERM) after the running members have stopped
    (they checkpoint and exit) and the index says they are pending.
    """
    from tqdm import tqdm

    from cosim.run.rundir import RunLock

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out)
    lock.acquire()
    try:
        merge_index(sweep, out)
        write_index(sweep, out)
        runner = _RayBackend(workers, address) if backend == "ray" else _LocalBackend(workers)
        todo = [m for m in sweep.members if m.status != "done"]
        by_name = {m.name: m for m in sweep.members}
        started: dict[str, float] = {}
        bar = tqdm(total=len(sweep.members), initial=len(sweep.members) - len(todo), desc=sweep.name,
                   unit="member", disable=None if progress is None else not progress)
        with StopSignals.install(sweep.name) as stop:
            stop.reinstall()  # ray.init installs handlers of its own
            try:
                while todo or started:
                    if stop.signum is not None:
                        _stop(runner, sweep, out, started, by_name, stop)
                        raise Interrupted(stop.signum)
                    while todo and runner.capacity() > 0:
                        member = todo.pop(0)
                        _wait_unlocked(out / member.name, bar)
                        member.status, member.error, member.exit_status = "running", "", ""
                        started[member.name] = time.perf_counter()
                        runner.start(sweep, member, out)
                        write_index(sweep, out)
                    finished = runner.poll()
                    for name, code in finished:
                        member = by_name[name]
                        member.wall_time_s += time.perf_counter() - started.pop(name)
                        member.exit_status = str(code)
                        if code == 0:
                            member.status = "done"
                        else:
                            member.status = "failed"
                            member.error = _last_error(out / "logs" / f"{name}.log", code)
                            bar.write(f"{sweep.name}: member {name} failed: {member.error}")
                        bar.update(1)
                    if finished:
                        write_index(sweep, out)
                        bar.set_postfix(failed=sum(m.status == "failed" for m in sweep.members))
                    else:
                        time.sleep(poll_s)
            finally:
                bar.close()
        return sum(m.status == "failed" for m in sweep.members)
    finally:
        lock.release()


def _wait_unlocked(run_dir: Path, bar, timeout_s: float = 300) -> None:
    """Wait while a member process of an earlier, killed sweep still finishes its epoch there."""
    import fcntl

    lock = run_dir / ".lock"
    if not lock.is_file():
        return
    deadline = time.monotonic() + timeout_s
    told = False
    while time.monotonic() < deadline:
        try:
            with open(lock, "a+") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # free (closing the file drops the lock again)
        except OSError:
            if not told:
                bar.write(f"waiting for an earlier process to leave {run_dir} (it checkpoints and stops)")
                told = True
            time.sleep(0.5)


def _stop(runner, sweep: Sweep, out: Path, started: dict[str, float], by_name: dict[str, Member],
          stop: StopSignals) -> None:
    """Pass the signal on to the running members (they stop at a safe point, see cosim.run.experiment),
    wait for them, mark them pending. A second signal is passed on too (they stop at once)."""
    stop.on_repeat = runner.signal_all
    say(f"{sweep.name}: stopping {len(started)} running member(s) at their next safe point "
        "(interrupt again to stop them at once)")
    runner.signal_all(stop.signum)
    deadline = time.monotonic() + 600
    while started and time.monotonic() < deadline:
        for name, code in runner.poll():
            member = by_name[name]
            member.wall_time_s += time.perf_counter() - started.pop(name)
            member.exit_status = str(code)
            member.status = "done" if code == 0 else "pending"
        time.sleep(0.1)
    for name in started:
        by_name[name].status = "pending"
    write_index(sweep, out)


# ---------------------------------------------------------------------------- command line
def add_arguments(parser) -> None:
    parser.add_argument("sweep", type=Path, help="sweep YAML file (base scenario, grid, zip, seeds)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every member, e.g. --set train.epochs=50 (repeatable)")
    parser.add_argument("--out", help="sweep directory (default: runs/<sweep file stem>)")
    parser.add_argument("--workers", type=int, default=1, help="members run at a time (default 1)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local processes (default) or a Ray cluster")
    parser.add_argument("--address", help="Ray cluster address (default: start or join a local one)")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the members, run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fail(lines: list[str], status: int = 2) -> int:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return status


def cli(args) -> int:
    """``cosim sweep``: 0 every member done, 1 some failed, 2 bad sweep file or member."""
    if args.workers < 1:
        return _fail([f"--workers: must be >= 1 (got {args.workers})"])
    if args.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return _fail(["--backend ray: the ray package is not installed; install the extra with "
                          "pip install 'cosim[ray]' (or pip install 'ray[default]'), or use the local backend"])
    try:
        sweep = load_sweep(args.sweep, args.overrides)
        validate(sweep)
    except SweepError as exc:
        return _fail(exc.lines)
    if args.out is not None and not args.out.strip():
        return _fail(["--out: empty path; give a sweep directory, e.g. --out runs/x"])
    if args.out is None:
        from cosim.config.names import name_problem

        problem = name_problem(args.sweep.stem)
        if problem:  # e.g. a file named '...yaml': runs/.. is not inside runs/
            return _fail([f"{args.sweep}: the default sweep directory runs/<file stem> needs a plain file "
                          f"stem, and {args.sweep.stem!r} {problem}; rename the file or give --out DIR"])
    out = Path(args.out) if args.out is not None else Path("runs") / args.sweep.stem
    if args.dry_run:
        merge_index(sweep, out)
        print(f"{sweep.name}: {len(sweep.members)} members of {sweep.base} into {out}")
        for m in sweep.members:
            print(f"  {m.status:8s} {m.name}  " + " ".join(f"--set {shlex.quote(o)}" for o in m.overrides))
        return 0
    from cosim.run.rundir import RunDirError

    try:
        failed = run_sweep(sweep, out, workers=args.workers, backend=args.backend, address=args.address,
                           progress=False if args.no_progress else None)
    except RunDirError as exc:
        text = str(exc).replace("another cosim run", "another cosim sweep")
        return _fail([text])
    done = sum(m.status == "done" for m in sweep.members)
    print(f"{sweep.name}: {done} of {len(sweep.members)} members done, {failed} failed; index: {out / INDEX}")
    if failed:
        for m in sweep.members:
            if m.status == "failed":
                print(f"error: member {m.name}: {m.error} (log: {out / 'logs' / (m.name + '.log')})",
                      file=sys.stderr)
        return 1
    return 0
