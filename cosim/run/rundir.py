"""The run directory: atomic files, CSV logs, checkpoints, a lock, and the checks done on resume.

Layout::

    run.json         what the run was started from: sha256 of the resolved config and of every
                     input file (network, routes); marks the directory as a cosim run directory
    config.yaml      the fully resolved config (every default, absolute paths)
    metrics.csv      one row per finished epoch (deterministic: same config + seed => same file)
    timing.csv       wall-clock seconds per epoch (machine dependent, hence kept apart)
    checkpoint.pt    state after the last checkpointed epoch, with the config, the input hashes
                     and every row of both CSV files up to it (written atomically)
    comm_*.csv       files kept by hooks (CommMix's N x N matrices), cumulative
    .lock            held (flock) by the one process writing the directory

Resume rules (:func:`open_run_dir`): the checkpoint is the reference. It must load (safely:
``torch.load(weights_only=True)``), name the same configuration (``train.epochs`` may grow)
and the same input file contents, and the CSV files must hold its rows. Rows of epochs after
the checkpoint and a torn last line are dropped (those epochs are redone). Anything else is
refused with a :class:`RunDirError` that says what differs and what to do: ``--force``
rebuilds damaged CSV files from the checkpoint (the damaged file is kept beside it), and
``--restart`` discards the run. Nothing this module refuses is modified.

This module writes files in exactly one way: :func:`atomic_write` (temporary file, fsync,
rename). It imports torch lazily, so the CLI can import it cheaply.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cosim.run.signals import Interrupted  # noqa: F401 - raised by the run loop, documented here

CHECKPOINT_VERSION = 2
RUN_FORMAT = 1
MARKERS = ("run.json", "checkpoint.pt", "config.yaml")
LOGS = ("metrics.csv", "timing.csv")
LOCK_NAME = ".lock"


class RunDirError(Exception):
    """The output directory cannot be used for this run (message says why and what to do)."""


# ---------------------------------------------------------------------------- atomic files
def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` through ``write(binary file)`` atomically: a temporary file next to it,
    flushed and fsynced, then renamed over ``path`` (readers see the old or the new file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- CSV logs
def _cell(value: Any) -> str:
    """A value as the csv module writes it."""
    return "" if value is None else value if isinstance(value, str) else str(value)


@dataclass
class CsvContent:
    """What a CSV file holds: its header, its complete rows, and whether a line was torn."""

    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    torn: bool = False
    exists: bool = False
    error: str | None = None  # not a CSV cosim could have written


def read_csv(path: Path) -> CsvContent:
    """The complete rows of a CSV written by :class:`CsvLog` (a torn last line is noted)."""
    out = CsvContent()
    if not path.is_file():
        return out
    out.exists = True
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.error = "not UTF-8 text"
        return out
    except OSError as exc:
        out.error = f"cannot be read ({exc.strerror})"
        return out
    if "\0" in text:
        out.error = "holds NUL bytes (binary data)"
        return out
    end = text.rfind("\n") + 1
    out.torn = end < len(text)
    try:
        table = list(csv.reader(io.StringIO(text[:end])))
    except csv.Error as exc:
        out.error = f"is not valid CSV ({exc})"
        return out
    if table:
        out.columns, out.rows = table[0], table[1:]
        bad = [i for i, row in enumerate(out.rows) if len(row) != len(out.columns)]
        if bad:
            out.error = f"row {bad[0] + 1} has {len(out.rows[bad[0]])} fields, the header {len(out.columns)}"
    return out


def read_rows(path: Path) -> list[dict[str, str]]:
    """Complete rows of a CSV written by :class:`CsvLog`, as dicts (a torn last line is ignored)."""
    content = read_csv(path)
    return [dict(zip(content.columns, row)) for row in content.rows]


def _csv_bytes(columns: list[str], rows: list[list[str]]) -> bytes:
    if not columns:
        return b""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


class CsvLog:
    """An append-only CSV; every row is flushed and fsynced before the call returns.

    Created with the rows it must hold (``columns``, ``rows``): the file is rewritten
    (atomically) to exactly those when it holds anything else, e.g. rows of epochs after the
    checkpoint or a torn last line. The rows written so far are kept in memory (checkpoints
    store them).
    """

    def __init__(self, path: Path, columns: list[str] | None = None, rows: list[list[str]] | None = None):
        self.path = Path(path)
        self.columns: list[str] | None = list(columns) if columns else None
        self.rows: list[list[str]] = [list(r) for r in rows or []]
        wanted = _csv_bytes(self.columns or [], self.rows)
        current = self.path.read_bytes() if self.path.is_file() else None
        if current != wanted:
            atomic_write_bytes(self.path, wanted)

    def append(self, row: dict[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        elif list(row) != self.columns:
            raise RuntimeError(f"{self.path.name}: columns changed from {self.columns} to {list(row)}")
        cells = [_cell(row[c]) for c in self.columns]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if new:
            writer.writerow(self.columns)
        writer.writerow(cells)
        with open(self.path, "ab") as fh:
            fh.write(buf.getvalue().encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self.rows.append(cells)

    def snapshot(self) -> dict[str, list]:
        return {"columns": list(self.columns or []), "rows": [list(r) for r in self.rows]}


# ---------------------------------------------------------------------------- lock
class RunLock:
    """An exclusive ``flock`` on ``out/.lock``: one writer per run directory.

    The kernel drops the lock when the process ends, however it ends, so a killed run never
    leaves a stale lock behind.
    """

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME
        self._fh = None

    def acquire(self) -> None:
        import fcntl

        try:
            fh = open(self.path, "a+")
        except OSError as exc:
            raise RunDirError(f"{self.path.parent}: cannot write to the run directory ({exc.strerror}); "
                              "use another --out") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunDirError(f"{self.path.parent}: another cosim run (pid {holder}) is writing to this "
                                  "run directory; wait for it to finish, or use another --out") from None
            raise RunDirError(f"{self.path.parent}: cannot lock the run directory ({exc.strerror})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------------------- what a run is made of
def comparable_config(config) -> dict:
    """The resolved config as plain data, without ``train.epochs`` (a run may be extended)."""
    import yaml

    data = yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=True))
    data.get("train", {}).pop("epochs", None)
    return data


def config_sha256(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def input_files(config) -> dict[str, Path]:
    """Every input file a run reads, by config key."""
    net = config.network
    files: dict[str, Path] = {}
    for key in ("net_file", "nodes", "edges", "connections"):
        value = getattr(net, key)
        if value is not None:
            files[f"network.{key}"] = Path(value)
    for i, route in enumerate(net.routes):
        files[f"network.routes[{i}]"] = Path(route)
    return files


def input_hashes(config) -> dict[str, dict[str, str]]:
    out = {}
    for key, path in input_files(config).items():
        try:
            digest = file_sha256(path)
        except OSError as exc:
            raise RunDirError(f"{key}: {path}: cannot be read ({exc.strerror})") from None
        out[key] = {"path": str(path), "sha256": digest}
    return out


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def training_rows(columns: list[str], rows: list[list[str]]) -> int:
    """Rows of training epochs (evaluation rows, ``phase`` = ``eval``, sit between them)."""
    if "phase" not in columns:
        return len(rows)
    k = columns.index("phase")
    return sum(1 for row in rows if len(row) > k and row[k] != "eval")


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    atomic_write(path, lambda fh: torch.save(state, fh))


_REQUIRED = {"version": int, "epochs_done": int, "config": dict, "inputs": dict, "metrics": dict,
             "timing": dict, "controller": dict, "hooks": list}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint loaded without running any pickled code (``weights_only=True``), checked."""
    import torch

    fix = "restore it from a copy, or use --restart to discard the run"
    size = path.stat().st_size
    if size == 0:
        raise RunDirError(f"{path}: the checkpoint is empty (0 bytes; the run was probably killed while "
                          f"the disk was full); {fix}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the answer below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or unsafe: all one answer
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise RunDirError(f"{path}: not a readable cosim checkpoint ({reason}); {fix}") from None
    if not isinstance(state, dict):
        raise RunDirError(f"{path}: not a cosim checkpoint (holds a {type(state).__name__}); {fix}")
    if state.get("version") != CHECKPOINT_VERSION:
        raise RunDirError(f"{path}: checkpoint format {state.get('version')!r} is not {CHECKPOINT_VERSION} "
                          f"(written by another cosim version, or not by cosim); {fix}")
    for key, kind in _REQUIRED.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise RunDirError(f"{path}: not a cosim checkpoint (key {key!r} missing or not a {kind.__name__}); {fix}")
    if state["epochs_done"] < 1:
        raise RunDirError(f"{path}: checkpoint with {state['epochs_done']} epochs done; {fix}")
    for log in ("metrics", "timing"):
        rows, columns = state[log].get("rows"), state[log].get("columns")
        if (not isinstance(rows, list) or not isinstance(columns, list)
                or training_rows(columns, rows) != state["epochs_done"]):
            raise RunDirError(f"{path}: the checkpoint's {log} rows do not match its epoch count; {fix}")
    return state


# ---------------------------------------------------------------------------- opening a run directory
@dataclass
class RunDir:
    """An opened, verified and locked run directory (see :func:`open_run_dir`)."""

    path: Path
    lock: RunLock
    done: int
    state: dict[str, Any] | None
    metrics: CsvLog
    timing: CsvLog
    config_data: dict
    inputs: dict[str, dict[str, str]]
    notes: list[str] = field(default_factory=list)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def save(self, epochs_done: int, controller_state: dict, hooks_state: list) -> None:
        save_checkpoint(self.checkpoint_path, {
            "version": CHECKPOINT_VERSION, "epochs_done": epochs_done, "config": self.config_data,
            "config_sha256": config_sha256(self.config_data), "inputs": self.inputs,
            "metrics": self.metrics.snapshot(), "timing": self.timing.snapshot(),
            "controller": controller_state, "hooks": hooks_state})

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def close(self) -> None:
        self.lock.release()


def _prepare_directory(out: Path) -> None:
    if str(out) == "":
        raise RunDirError("--out: the run directory is an empty path; give a directory, e.g. --out runs/x")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a directory; give a new or empty directory as --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{out}: cannot create the run directory ({exc.strerror}); use another --out") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunDirError(f"{out}: the run directory is not writable; use another --out")


def _backup(path: Path, stamp: str) -> Path:
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, target)
    return target


def _check_log(name: str, content: CsvContent, want: dict | None, done: int, every: int) -> str | None:
    """What is wrong with a CSV log against the checkpoint's rows (None: usable)."""
    if content.error:
        return f"{name} {content.error}"
    trained = training_rows(content.columns, content.rows)
    if want is None:  # no checkpoint yet: the rows of the epochs before the first one are dropped
        # (the first checkpoint follows epoch ``every`` - 1 and its evaluations: a kill in
        # between leaves up to ``every`` training epochs of rows without a checkpoint)
        if trained > every:
            return (f"{name} holds {trained} epochs but there is no checkpoint.pt (it is written "
                    f"every {every} epochs), so they cannot be resumed")
        return None
    if not content.exists:
        return f"{name} is missing (the checkpoint holds {done} epochs)"
    if content.columns != want["columns"]:
        return f"{name} has other columns than the run's ({', '.join(content.columns[:4]) or 'none'}, ...)"
    have = content.rows
    if len(have) < len(want["rows"]):
        return (f"{name} has {len(have)} rows, the checkpoint {len(want['rows'])} "
                f"(rows {len(have)}..{len(want['rows']) - 1} are missing)")
    for i, (a, b) in enumerate(zip(have, want["rows"])):
        if a != b:
            return f"{name}: row {i} differs from the checkpoint's (the file was edited or is another run's)"
    if trained > done + every:
        return (f"{name} has {trained} epochs, more than the checkpoint's {done} epochs plus {every} "
                "(the checkpoint is older than the metrics)")
    return None


def open_run_dir(config, out: Path, *, restart: bool = False, force: bool = False) -> RunDir:
    """Create or verify ``out`` for ``config``, take its lock, and return it ready to append.

    Raises :class:`RunDirError` (nothing changed) when the directory belongs to another run, is
    damaged, or is used by another process.
    """
    out = Path(out)
    _prepare_directory(out)
    lock = RunLock(out)
    lock.acquire()
    try:
        return _open_locked(config, out, lock, restart, force)
    except BaseException:
        lock.release()
        raise


def _open_locked(config, out: Path, lock: RunLock, restart: bool, force: bool) -> RunDir:
    every = config.train.checkpoint_every
    names = sorted(p.name for p in out.iterdir())
    if not any(n in MARKERS for n in names):
        foreign = [n for n in names if not (n == LOCK_NAME or n.startswith("."))]
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise RunDirError(f"{out}: not empty and not a cosim run directory (holds {shown}); nothing was "
                              "changed. Give a new or empty directory as --out")
    if restart:
        for entry in out.iterdir():
            name = entry.name
            if entry.is_file() and (name in MARKERS or name in LOGS or name.startswith("comm_")
                                    or (name.startswith(".") and ".tmp-" in name)):
                entry.unlink()

    data = comparable_config(config)
    inputs = input_hashes(config)
    ckpt = out / "checkpoint.pt"
    state = load_checkpoint(ckpt) if ckpt.is_file() else None
    problems: list[str] = []
    if state is not None:
        keys = diff_keys(state["config"], data)
        if keys:
            raise RunDirError(f"{out} holds a run with a different configuration (differs in: "
                              f"{', '.join(keys[:8])}); use another --out, or --restart to discard it")
        for key, now in inputs.items():
            then = state["inputs"].get(key)
            if isinstance(then, dict) and then.get("sha256") != now["sha256"]:
                raise RunDirError(
                    f"{out}: {key} ({now['path']}) changed since the run started (sha256 "
                    f"{str(then.get('sha256'))[:12]}... then, {now['sha256'][:12]}... now); restore the file, "
                    "or use another --out (or --restart) to run with the new one")
        done = state["epochs_done"]
    else:
        done = 0
        cfg_path = out / "config.yaml"
        if cfg_path.is_file() and read_csv(out / "metrics.csv").rows:
            # killed before its first checkpoint, with rows: they are redone, but not for another config
            import yaml

            try:
                old = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError):
                old = None
            if isinstance(old, dict):
                old.get("train", {}).pop("epochs", None) if isinstance(old.get("train"), dict) else None
                keys = diff_keys(old, data)
                if keys:
                    raise RunDirError(f"{out} holds a run with a different configuration (differs in: "
                                      f"{', '.join(keys[:8])}); use another --out, or --restart to discard it")
    contents = {name: read_csv(out / name) for name in LOGS}
    for name, content in contents.items():
        want = state[name.split(".")[0]] if state is not None else None
        problem = _check_log(name, content, want, done, every)
        if problem:
            problems.append(problem)
    notes: list[str] = []
    if problems:
        if not force:
            how = ("--force rebuilds the CSV files from the checkpoint (the current ones are kept as "
                   "*.damaged-<time>)" if state is not None else
                   "--force starts the run over (the current files are kept as *.damaged-<time>)")
            raise RunDirError(f"{out}: the run directory is damaged: " + "; ".join(problems)
                              + f". Nothing was changed. {how}; --restart discards the run")
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for name in LOGS:
            if (out / name).is_file():
                kept = _backup(out / name, stamp)
                notes.append(f"kept the old {name} as {kept.name}")
    if state is not None:
        metrics = CsvLog(out / "metrics.csv", state["metrics"]["columns"], state["metrics"]["rows"])
        timing = CsvLog(out / "timing.csv", state["timing"]["columns"], state["timing"]["rows"])
    else:
        metrics, timing = CsvLog(out / "metrics.csv"), CsvLog(out / "timing.csv")
    record = {"format": RUN_FORMAT, "config_sha256": config_sha256(data), "inputs": inputs}
    atomic_write_text(out / "run.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
    return RunDir(out, lock, done, state, metrics, timing, data, inputs, notes)
