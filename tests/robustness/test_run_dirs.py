"""Damaged, foreign or busy run directories, and --out paths that cannot hold a run.

Every case starts from a copy of one finished 3-epoch run, damages it, and runs the 4-epoch
command into it. A refused run (exit 2) must leave every file as it was; a resumed one (exit 0),
and the recovery the message suggests (--force or --restart), must end with exactly the
metrics.csv of an undamaged 4-epoch run: no row lost, none duplicated.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from robust_kit import FIGURE8, QUICK, args_for, snapshot

SETS = (*QUICK, "train.epochs=4")


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """A finished 3-epoch run (to damage) and the metrics of the 4-epoch run."""
    from cosim.cli.main import main

    base = tmp_path_factory.mktemp("reference")
    assert main(args_for("run", FIGURE8, *QUICK, "train.epochs=3", out=base / "three")) == 0
    assert main(args_for("run", FIGURE8, *SETS, out=base / "four")) == 0
    assert main(args_for("run", FIGURE8, *QUICK, "train.epochs=3", "seed=5", out=base / "seed5")) == 0
    return base


def _copy(references, tmp_path, name="three") -> Path:
    out = tmp_path / "run"
    shutil.copytree(references / name, out)
    return out


def _rows_ok(references, out) -> None:
    assert (out / "metrics.csv").read_bytes() == (references / "four" / "metrics.csv").read_bytes()
    timing = (out / "timing.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in timing] == ["epoch", "0", "1", "2", "3"]


def _csv(out, name="metrics.csv") -> list[str]:
    return (out / name).read_text().splitlines(keepends=True)


def _write_lines(out, lines, name="metrics.csv") -> None:
    (out / name).write_text("".join(lines))


def _torch_save(obj):
    def damage(out):
        torch.save(obj, out / "checkpoint.pt")
    return damage


def _old_version(out):
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    state["version"] = 1
    torch.save(state, out / "checkpoint.pt")


def _tampered_epochs(out):
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    state["epochs_done"] = 2
    torch.save(state, out / "checkpoint.pt")


def _checkpoint_of(name):
    def damage(out):
        shutil.copy(out.parent.parent / "references" / name / "checkpoint.pt", out / "checkpoint.pt")
    return damage


# name -> (damage(out), how to recover: None = resumes as it is, "--force" or "--restart")
REFUSED_CHECKPOINT = {
    "zero_bytes": lambda out: (out / "checkpoint.pt").write_bytes(b""),
    "truncated": lambda out: (out / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:1000]),
    "half": lambda out: (out / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:-100]),
    "text": lambda out: (out / "checkpoint.pt").write_text("hello\n"),
    "random_bytes": lambda out: (out / "checkpoint.pt").write_bytes(os.urandom(5000)),
    "foreign_torch_dict": _torch_save({"model": torch.zeros(3)}),
    "foreign_torch_tensor": _torch_save(torch.zeros(3)),
    "unsafe_pickle": lambda out: (out / "checkpoint.pt").write_bytes(pickle.dumps(Path("/etc/passwd"))),
    "old_format": _old_version,
    "epochs_tampered": _tampered_epochs,
}


@pytest.mark.parametrize("case", sorted(REFUSED_CHECKPOINT))
def test_damaged_checkpoint_is_refused(cli, references, tmp_path, case):
    out = _copy(references, tmp_path)
    REFUSED_CHECKPOINT[case](out)
    before = snapshot(out)
    result = cli(*args_for("run", FIGURE8, *SETS, out=out))
    assert result.rc == 2 and "checkpoint.pt" in result.err and "--restart" in result.err, result.err
    assert snapshot(out) == before
    assert cli(*args_for("run", FIGURE8, *SETS, out=out, extra=("--restart",))).rc == 0
    _rows_ok(references, out)


def test_checkpoint_of_another_seed_is_refused(cli, references, tmp_path):
    out = _copy(references, tmp_path)
    shutil.copy(references / "seed5" / "checkpoint.pt", out / "checkpoint.pt")
    before = snapshot(out)
    result = cli(*args_for("run", FIGURE8, *SETS, out=out))
    assert result.rc == 2 and "differs in: seed" in result.err, result.err
    assert snapshot(out) == before


def _drop_row(i):
    def damage(out):
        lines = _csv(out)
        del lines[1 + i]
        _write_lines(out, lines)
    return damage


def _duplicate_row(i):
    def damage(out):
        lines = _csv(out)
        lines.insert(1 + i, lines[1 + i])
        _write_lines(out, lines)
    return damage


def _edit_cell(out):
    lines = _csv(out)
    cells = lines[2].split(",")
    cells[3] = "0.123"
    lines[2] = ",".join(cells)
    _write_lines(out, lines)


def _foreign(text):
    return lambda out: (out / "metrics.csv").write_text(text)


# damaged CSV files: refused, then rebuilt from the checkpoint with --force
REFUSED_CSV = {
    "metrics_deleted": lambda out: (out / "metrics.csv").unlink(),
    "metrics_zero_bytes": _foreign(""),
    "metrics_header_only": lambda out: _write_lines(out, _csv(out)[:1]),
    "metrics_one_row_left": lambda out: _write_lines(out, _csv(out)[:2]),
    "metrics_last_row_deleted": _drop_row(2),
    "metrics_first_row_deleted": _drop_row(0),
    "metrics_middle_row_deleted": _drop_row(1),
    "metrics_torn_inside_row_2": lambda out: (out / "metrics.csv").write_bytes(
        (out / "metrics.csv").read_bytes()[: -len(_csv(out)[-1]) - 20]),
    "metrics_row_duplicated": _duplicate_row(0),
    "metrics_value_edited": _edit_cell,
    "metrics_foreign_csv": _foreign("name,score\nalice,3\nbob,4\ncarol,5\n"),
    "metrics_foreign_same_length": lambda out: _write_lines(out, ["a,b\n"] + ["1,2\n"] * 3),
    "metrics_binary": lambda out: (out / "metrics.csv").write_bytes(os.urandom(300) + b"\0"),
    "metrics_latin1": lambda out: (out / "metrics.csv").write_bytes("epoch,caf\xe9\n0,1\n".encode("latin-1")),
    "metrics_ragged": lambda out: _write_lines(out, _csv(out)[:1] + ["0,1\n"] * 3),
    "metrics_is_a_directory": lambda out: ((out / "metrics.csv").unlink(), (out / "metrics.csv").mkdir()),
    "timing_deleted": lambda out: (out / "timing.csv").unlink(),
    "timing_row_deleted": lambda out: _write_lines(out, _csv(out, "timing.csv")[:2], "timing.csv"),
    "both_deleted": lambda out: ((out / "metrics.csv").unlink(), (out / "timing.csv").unlink()),
}


@pytest.mark.parametrize("case", sorted(REFUSED_CSV))
def test_damaged_csv_is_refused_then_rebuilt_with_force(cli, references, tmp_path, case):
    out = _copy(references, tmp_path)
    REFUSED_CSV[case](out)
    before = snapshot(out)
    result = cli(*args_for("run", FIGURE8, *SETS, out=out))
    assert result.rc == 2 and "damaged" in result.err and "--force" in result.err, result.err
    assert snapshot(out) == before
    if (out / "metrics.csv").is_dir():
        (out / "metrics.csv").rmdir()
    result = cli(*args_for("run", FIGURE8, *SETS, out=out, extra=("--force",)))
    assert result.rc == 0, result.text
    _rows_ok(references, out)
    kept = sorted(p.name for p in out.iterdir() if ".damaged-" in p.name)
    assert kept or case.endswith(("deleted", "directory")), kept  # the damaged file is kept


def _append(text):
    def damage(out):
        with open(out / "metrics.csv", "a") as fh:
            fh.write(text)
    return damage


# damage that resuming repairs by itself (what it drops are epochs after the checkpoint)
RESUMED = {
    "torn_last_line": _append("3,20,2.0,0.9"),
    "row_after_checkpoint": lambda out: _write_lines(out, _csv(out) + ["3" + _csv(out)[-1][1:]]),
    "row_duplicated_at_end": lambda out: _write_lines(out, _csv(out) + _csv(out)[-1:]),
    "config_yaml_deleted": lambda out: (out / "config.yaml").unlink(),
    "config_yaml_zero_bytes": lambda out: (out / "config.yaml").write_text(""),
    "config_yaml_garbage": lambda out: (out / "config.yaml").write_bytes(os.urandom(100)),
    "run_json_deleted": lambda out: (out / "run.json").unlink(),
    "run_json_garbage": lambda out: (out / "run.json").write_text("{not json"),
    "timing_torn": lambda out: (out / "timing.csv").write_bytes((out / "timing.csv").read_bytes() + b"3,0."),
    "stale_lock_file": lambda out: (out / ".lock").write_text("999999\n"),
    "leftover_tmp_file": lambda out: (out / ".checkpoint.pt.tmp-12345").write_bytes(b"half"),
    "comm_matrix_deleted": lambda out: [p.unlink() for p in out.glob("comm_*.csv")],
}


@pytest.mark.parametrize("case", sorted(RESUMED))
def test_resume_repairs_what_it_can(cli, references, tmp_path, case):
    out = _copy(references, tmp_path)
    RESUMED[case](out)
    result = cli(*args_for("run", FIGURE8, *SETS, out=out))
    assert result.rc == 0, result.text
    _rows_ok(references, out)


@pytest.mark.parametrize("case,sets,expected", [
    ("config_deleted_new_seed", ("seed=3",), "differs in: seed"),
    ("other_horizon", ("env.horizon=30",), "differs in: env.horizon"),
    ("other_learner", ("learner=idm",), "differs in: learner"),
    ("other_backend", ("sumo.backend=traci",), "differs in: sumo.backend"),
])
def test_other_configuration_is_refused(cli, references, tmp_path, case, sets, expected):
    out = _copy(references, tmp_path)
    (out / "config.yaml").unlink()
    before = snapshot(out)
    result = cli(*args_for("run", FIGURE8, *SETS, *sets, out=out))
    assert result.rc == 2 and expected in result.err, result.err
    assert snapshot(out) == before


def test_checkpoint_deleted_is_refused_then_started_over_with_force(cli, references, tmp_path):
    out = _copy(references, tmp_path)
    (out / "checkpoint.pt").unlink()
    before = snapshot(out)
    result = cli(*args_for("run", FIGURE8, *SETS, out=out))
    assert result.rc == 2 and "no checkpoint.pt" in result.err, result.err
    assert snapshot(out) == before
    assert cli(*args_for("run", FIGURE8, *SETS, out=out, extra=("--force",))).rc == 0
    _rows_ok(references, out)


@pytest.mark.parametrize("which", ["routes", "nodes", "edges", "connections"])
def test_input_file_edited_since_the_run_started(cli, tmp_path, scenario_copy, which):
    out = tmp_path / "out"
    assert cli(*args_for("run", scenario_copy, *QUICK, "train.epochs=1", out=out)).rc == 0
    src = next((scenario_copy.parent / "networks" / "figure8").glob(f"*.{which[:3]}.xml"))
    original = src.read_bytes()
    src.write_bytes(original.replace(b"-->", b"edited -->", 1) if b"-->" in original else original + b"<!-- x -->\n")
    before = snapshot(out)
    result = cli(*args_for("run", scenario_copy, *QUICK, "train.epochs=2", out=out))
    assert result.rc == 2 and f"network.{which}" in result.err and "changed since" in result.err, result.err
    assert snapshot(out) == before
    src.write_bytes(original)
    assert cli(*args_for("run", scenario_copy, *QUICK, "train.epochs=2", out=out)).rc == 0


def test_a_second_writer_is_refused(cli, references, tmp_path):
    out = _copy(references, tmp_path)
    with open(out / ".lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        fh.write("4242\n")
        fh.flush()
        before = snapshot(out)
        result = cli(*args_for("run", FIGURE8, *SETS, out=out))
        assert result.rc == 2 and "another cosim run" in result.err, result.err
        assert snapshot(out) == before
    assert cli(*args_for("run", FIGURE8, *SETS, out=out)).rc == 0
    _rows_ok(references, out)


def test_finished_run_is_left_alone(cli, references, tmp_path):
    out = _copy(references, tmp_path)
    before = snapshot(out)
    assert cli(*args_for("run", FIGURE8, *QUICK, "train.epochs=3", out=out)).rc == 0
    after = snapshot(out)
    for name in ("metrics.csv", "timing.csv", "checkpoint.pt"):
        assert after[name] == before[name]


# --out paths that cannot hold a run: refused before anything is written
def _file(tmp_path):
    (tmp_path / "file.txt").write_text("keep me\n")
    return tmp_path / "file.txt"


def _foreign_dir(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me\n")
    return tmp_path / "mine"


def _users_metrics(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "metrics.csv").write_text("a,b\n1,2\n")
    return tmp_path / "mine"


OUT_PATHS = {
    "empty_string": (lambda tmp_path: "", "empty"),
    "blank": (lambda tmp_path: "  ", "empty"),
    "under_proc": (lambda tmp_path: "/proc/cosim-test/run", "cannot create"),
    "proc_itself": (lambda tmp_path: "/proc/self", "writable"),
    "under_sys": (lambda tmp_path: "/sys/cosim-test", "cannot"),
    "existing_file": (_file, "not a directory"),
    "below_a_file": (lambda tmp_path: _file(tmp_path) / "run", "cannot create"),
    "dev_null": (lambda tmp_path: "/dev/null", "not a directory"),
    "foreign_directory": (_foreign_dir, "not a cosim run directory"),
    "users_metrics_csv": (_users_metrics, "not a cosim run directory"),
}


@pytest.mark.parametrize("case", sorted(OUT_PATHS))
def test_out_path_that_cannot_hold_a_run(cli, tmp_path, case):
    make, expected = OUT_PATHS[case]
    out = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = cli(*args_for("run", FIGURE8, *QUICK, "train.epochs=1", out=out))
    assert result.rc == 2 and expected in result.err, result.err
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


def test_restart_keeps_files_that_are_not_cosims(cli, references, tmp_path):
    out = _copy(references, tmp_path)
    (out / "my_notes.txt").write_text("keep me\n")
    assert cli(*args_for("run", FIGURE8, *SETS, out=out, extra=("--restart",))).rc == 0
    assert (out / "my_notes.txt").read_text() == "keep me\n"
    _rows_ok(references, out)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(cli, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = cli(*args_for("run", FIGURE8, *QUICK, "train.epochs=1", out=out))
        assert result.rc == 2 and "writable" in result.err, result.err
    finally:
        out.chmod(0o755)
