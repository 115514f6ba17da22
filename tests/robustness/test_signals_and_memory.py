"""Signals (SIGINT, SIGTERM, once or twice, at start-up or mid-run), exits without spurious
tracebacks, and settings that would need more memory than the machine has."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from robust_kit import FIGURE8, QUICK, Result, args_for, run_subprocess

SLOW = ("learner=random", "env.horizon=300", "train.epochs=40")


def _start(out, *sets):
    return subprocess.Popen([sys.executable, "-m", "cosim", *args_for("run", FIGURE8, *sets, out=out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(out) -> list[str]:
    path = out / "metrics.csv"
    return path.read_text().splitlines()[1:] if path.is_file() else []


def _wait_rows(out, n, proc, limit=90.0):
    deadline = time.monotonic() + limit
    while len(_rows(out)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def _finish(proc) -> Result:
    out, err = proc.communicate(timeout=120)
    return Result(proc.returncode, out, err).clean()


class _Background:
    """A run started in the background whose stderr is read as it comes, to see what the run
    says when a signal lands."""

    def __init__(self, out, *sets):
        self.out = out
        self.proc = _start(out, *sets)
        self._err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self._err.append(line)

    def wait_for_line(self, *texts: str, limit=60.0) -> str:
        """The first stderr line holding one of ``texts``."""
        deadline = time.monotonic() + limit
        while True:
            for line in list(self._err):
                if any(t in line for t in texts):
                    return line
            assert time.monotonic() < deadline and (self.proc.poll() is None or self._reader.is_alive()), \
                "".join(self._err)
            time.sleep(0.01)

    def finish(self) -> Result:
        self.proc.wait(timeout=120)
        self._reader.join(timeout=30)
        return Result(self.proc.returncode, self.proc.stdout.read(), "".join(self._err)).clean()


# What the run says at the first signal: inside an epoch, or in the moment between an epoch's row
# and its checkpoint (where it rightly stops right after that checkpoint)
INSIDE_AN_EPOCH = ("stopping at the end of this step", "stopping after the current epoch")
BETWEEN_EPOCHS = "stopping after the checkpoint of epoch"


def _interrupt_inside_an_epoch(base, sets, rows, *, checkpoint=False, tries=4) -> _Background:
    """A run that got a SIGINT while the epoch after its first ``rows`` rows (and, with
    ``checkpoint``, its first checkpoint) was running. A try whose signal landed between an
    epoch's row and its checkpoint is finished and another started in a fresh directory."""
    for k in range(tries):
        run = _Background(base.with_name(f"{base.name}_{k}"), *sets)
        _wait_rows(run.out, rows, run.proc)
        if checkpoint:
            _wait_checkpoint(run.out, run.proc)
        run.proc.send_signal(signal.SIGINT)
        if any(t in run.wait_for_line(*INSIDE_AN_EPOCH, BETWEEN_EPOCHS) for t in INSIDE_AN_EPOCH):
            return run
        assert run.finish().rc == 130
    raise AssertionError(f"every one of {tries} signals landed between an epoch and its checkpoint")


def _wait_checkpoint(out, proc, limit=90.0):
    """Wait for the first checkpoint: the epoch after it has begun."""
    deadline = time.monotonic() + limit
    while not (out / "checkpoint.pt").is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)


@pytest.mark.parametrize("every,rows_after", [(1, 1), (2, 2)])
def test_first_signal_stops_at_the_step_when_nothing_finished_is_lost(cli, tmp_path, every, rows_after):
    """checkpoint_every 1: the epoch in progress is dropped at the next step (redone on resume);
    checkpoint_every 2: epoch 1 is not covered by a checkpoint yet, so it finishes and one is
    written. Either way the resumed run equals an uninterrupted one."""
    sets = ("learner=random", "env.horizon=1200", "train.eval_every=0", f"train.checkpoint_every={every}")
    run = _interrupt_inside_an_epoch(tmp_path / "run", (*sets, "train.epochs=40"), 1, checkpoint=every == 1)
    out = run.out
    result = run.finish()
    assert result.rc == 130, result.err
    assert ("redone on resume" in result.err) == (every == 1), result.err
    assert len(_rows(out)) == rows_after
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epochs_done"] == rows_after
    more = (*sets, f"train.epochs={rows_after + 1}")
    assert cli(*args_for("run", FIGURE8, *more, out=out)).rc == 0
    assert cli(*args_for("run", FIGURE8, *more, out=tmp_path / "reference")).rc == 0
    assert (out / "metrics.csv").read_bytes() == (tmp_path / "reference" / "metrics.csv").read_bytes()


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_first_signal_checkpoints_and_stops(cli, tmp_path, signum, status):
    out = tmp_path / "run"
    proc = _start(out, *SLOW)
    _wait_rows(out, 1, proc)
    proc.send_signal(signum)
    result = _finish(proc)
    assert result.rc == status, result.err
    assert "resume" in result.err and str(out) in result.err
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epochs_done"] == len(_rows(out)) >= 1  # every row is checkpointed
    assert [r.split(",")[0] for r in _rows(out)] == [str(i) for i in range(len(_rows(out)))]
    resumed = cli(*args_for("run", FIGURE8, *QUICK[:1], "env.horizon=300",
                            f"train.epochs={len(_rows(out)) + 1}", out=out))
    assert resumed.rc == 0, resumed.err
    assert [r.split(",")[0] for r in _rows(out)] == [str(i) for i in range(state["epochs_done"] + 1)]


@pytest.mark.parametrize("sets,second,status", [
    (("learner=random", "env.horizon=1500"), signal.SIGINT, 130),
    # torch and libsumo are busy when the second signal lands: it must not raise there
    (("sac.hidden=[32,32]", "sac.batch_size=32", "train.warmup_steps=20", "train.update_every=1",
      "env.horizon=600"), signal.SIGTERM, 143),
], ids=["random", "sac"])
def test_second_signal_stops_at_once_and_leaves_a_resumable_directory(cli, tmp_path, sets, second, status):
    out = tmp_path / "run"
    # epoch 1 is not covered by a checkpoint (every 2 epochs): the first signal waits for its end
    sets = (*sets, "train.checkpoint_every=2")
    run = _interrupt_inside_an_epoch(out, (*sets, "train.epochs=40"), 1)
    out = run.out
    time.sleep(0.3)
    run.proc.send_signal(second)
    result = run.finish()
    assert result.rc == status, result.err
    assert "interrupted again" in result.err
    done = len(_rows(out))  # may hold one row more than the checkpoint: the resume drops it
    resumed = cli(*args_for("run", FIGURE8, *sets, f"train.epochs={done + 1}", out=out))
    assert resumed.rc == 0, resumed.err
    assert [r.split(",")[0] for r in _rows(out)] == [str(i) for i in range(done + 1)]


@pytest.mark.parametrize("signum,status,delay", [(signal.SIGINT, 130, 0.3), (signal.SIGTERM, 143, 0.3),
                                                  (signal.SIGINT, 130, 1.5)])
def test_signal_during_start_up(tmp_path, signum, status, delay):
    out = tmp_path / "run"
    proc = _start(out, *SLOW)
    time.sleep(delay)
    proc.send_signal(signum)
    result = _finish(proc)
    assert result.rc == status, result.err
    _assert_checkpointed(out)


def _assert_checkpointed(out):
    """Whatever the moment of the signal: no row without its checkpoint (a fast machine may have
    finished start-up and an epoch before the signal came)."""
    trained = [r for r in _rows(out) if r.split(",")[1] == "train"]
    if trained:
        assert torch.load(out / "checkpoint.pt", weights_only=True)["epochs_done"] == len(trained)


@pytest.mark.parametrize("gap", [0.05, 0.5])
def test_second_signal_during_start_up_exits_at_once(tmp_path, gap):
    out = tmp_path / "run"
    proc = _start(out, *SLOW)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    proc.send_signal(signal.SIGTERM)
    result = _finish(proc)
    assert result.rc in (130, 143), result.err  # 143: stopped by the second; 130: by the first
    _assert_checkpointed(out)


def test_console_script_stops_quietly_during_start_up(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "cosim")
    if not os.path.isfile(script):
        pytest.skip("the cosim console script is not installed next to this interpreter")
    proc = subprocess.Popen([script, *args_for("run", FIGURE8, *SLOW, out=tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    result = _finish(proc)
    assert result.rc == 143, result.err


def test_failed_start_leaves_no_traceback_at_exit(tmp_path):
    result = run_subprocess(*args_for("run", FIGURE8, *QUICK, "network.edge_order=[nope]", "train.epochs=1",
                                      out=tmp_path / "run")).clean()
    assert result.rc == 2 and "network.edge_order" in result.err, result.err


def test_debug_shows_the_traceback_of_an_internal_error(cli, monkeypatch, tmp_path):
    import cosim.run.experiment

    monkeypatch.setattr(cosim.run.experiment, "run_experiment", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli("--debug", *args_for("run", FIGURE8, *QUICK, out=tmp_path / "run"))
    assert cli("--debug", *args_for("validate", FIGURE8, "env.horizon=0")).rc == 2


@pytest.mark.parametrize("sets", [
    ("sac.buffer_size=1000000000",),
    ("env.n_agents=100000", "sac.buffer_size=1000000"),
    ("env.n_agents=5000", "sac.hidden=[4096, 4096, 4096]", "sac.batch_size=4096"),
    ("sac.buffer_size=400000000", "sac.dtype=float64"),
])
def test_memory_beyond_the_machine_is_refused_before_allocating(cli, tmp_path, sets):
    out = tmp_path / "run"
    result = cli(*args_for("run", FIGURE8, "env.horizon=20", *sets, out=out))
    assert result.rc == 2 and "GiB" in result.err and "memory" in result.err, result.err
    assert not out.exists()


def test_memory_estimate_of_the_defaults_is_modest():
    from cosim.config import load_config
    from cosim.run.experiment import check_memory, estimate_memory

    config = load_config(FIGURE8)
    assert sum(estimate_memory(config).values()) < 2 * 2**30
    check_memory(config, available=8 * 2**30)


def test_cli_never_shows_a_traceback_for_an_internal_error(cli, monkeypatch, tmp_path):
    import cosim.run.experiment

    def broken(*args, **kwargs):
        raise ZeroDivisionError("deliberate")

    monkeypatch.setattr(cosim.run.experiment, "run_experiment", broken)
    result = cli(*args_for("run", FIGURE8, *QUICK, out=tmp_path / "run"), clean=False)
    assert result.rc == 1 and "internal error" in result.err and "--debug" in result.err
    assert "Traceback" not in result.err


def test_two_real_processes_into_one_run_directory(tmp_path):
    """A second ``cosim run`` into a directory another process is writing to is refused and
    writes nothing; the first one's rows stay one per epoch, none duplicated."""
    out = tmp_path / "run"
    first = _start(out, *SLOW)
    _wait_rows(out, 1, first)
    second = run_subprocess(*args_for("run", FIGURE8, *SLOW, out=out)).clean()
    assert second.rc == 2 and "another cosim run" in second.err, second.err
    first.send_signal(signal.SIGTERM)
    assert _finish(first).rc == 143
    epochs = [r.split(",")[0] for r in _rows(out) if r.split(",")[1] == "train"]
    assert epochs == [str(i) for i in range(len(epochs))] and epochs
    _assert_checkpointed(out)
