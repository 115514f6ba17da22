"""cosim report: plots and tables from run and sweep directories, from their CSV files only
(synthetic directories here: the numbers are known, nothing runs)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.cli.report import collect, main, make_report, summary_line, table_rows

COLUMNS = ["epoch", "phase", "avg_reward", "collisions", "rho_total", "rho_ef", "rho_r", "psi_gb", "messages"]


def write_run(path: Path, rewards: list[float], *, eval_rewards: list[float] | None = None,
              rho: tuple[int, int] = (10, 5), n: int = 3, interval: int = 8, phase: bool = True) -> Path:
    """A run directory: one train row per reward (an eval row after each when given)."""
    path.mkdir(parents=True)
    rows, timing = [], []
    for e, r in enumerate(rewards):
        rows.append([e, "train", r, 1 if e == 0 else 0, rho[0], rho[1], rho[1] / rho[0], 0.5, 100])
        timing.append([e, "train", 2.0])
        if eval_rewards is not None:
            rows.append([e, "eval", eval_rewards[e], 0, 0, 0, "nan", 0.0, 0])
            timing.append([e, "eval", 1.0])
    cols = COLUMNS if phase else [c for c in COLUMNS if c != "phase"]
    with open(path / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in rows:
            w.writerow(row if phase else [v for c, v in zip(COLUMNS, row) if c != "phase"])
    with open(path / "timing.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "phase", "wall_time_s"])
        w.writerows(timing)
    (path / "config.yaml").write_text(
        f"learner: sac\ncomm: {{method: rsm_masac, interval: {interval}, segments: 4, replicas: 3}}\n")
    for name in ("comm_segments_received.csv", "comm_mixes.csv"):
        lines = ["agent," + ",".join(f"from_{j}" for j in range(n))]
        lines += [f"{i}," + ",".join(str(i + j) for j in range(n)) for i in range(n)]
        (path / name).write_text("\n".join(lines) + "\n")
    return path


def write_sweep(path: Path, members: dict[str, dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    keys = list(next(iter(members.values()))["params"])
    with open(path / "sweep.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["member", "status", "wall_time_s", "exit_status", "error", "config_sha256", "run_dir", *keys])
        for name, m in members.items():
            w.writerow([name, m.get("status", "done"), 1.0, 0, "", "x", name, *m["params"].values()])
            if m.get("rewards") is not None:
                write_run(path / name, m["rewards"], eval_rewards=m.get("eval"), interval=m["params"].get("comm.interval", 8))
    return path


def test_import_does_not_load_torch_or_matplotlib():
    code = ("import sys, cosim.cli.report, cosim.cli.sweep; "
            "bad = [m for m in ('torch', 'matplotlib', 'learners', 'cosim.config') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_report_of_a_run_uses_eval_rows(tmp_path):
    run = write_run(tmp_path / "r", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                    eval_rewards=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    paths = make_report([run])
    out = run / "report"
    for name in ("learning_curves.png", "learning_curves.csv", "comm_r.png", "table_v.md", "table_v.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert out / name in paths
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "table_v.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["reward_mean"]) == pytest.approx((3 + 4 + 5 + 6 + 7) / 5)  # the last 5 evaluations
    assert float(row["reward_std"]) == 0
    assert float(row["rho_total"]) == 70 and float(row["rho_ef"]) == 35  # train rows only
    assert float(row["rho_r"]) == pytest.approx(0.5)
    assert float(row["psi_gb"]) == pytest.approx(3.5)
    assert float(row["collisions"]) == 1
    assert float(row["wall_time_s"]) == pytest.approx(7 * 3.0)
    assert row["method"] == "rsm_masac" and row["U"] == "8" and row["P"] == "4" and row["kappa"] == "3"
    md = (out / "table_v.md").read_text()
    assert "last 5 evaluations" in md and "50.00%" in md


def test_summary_line_of_a_run(tmp_path):
    run = write_run(tmp_path / "r", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                    eval_rewards=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    line = summary_line(run)
    assert line.startswith(f"{run}: 7 training epochs + 7 evaluation epochs; 21 s;"), line
    assert "reward 0.7 (last epoch), 5 (last 5 evaluations)" in line  # (3 + ... + 7) / 5
    assert "collisions 1" in line and "rho_total 70, rho_r 0.5, psi 3.5 GB" in line


def test_training_rows_when_there_is_no_evaluation(tmp_path):
    run = write_run(tmp_path / "r", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], phase=False)
    (row,) = table_rows(collect([run])[0])
    assert row["reward_mean"] == pytest.approx((0.2 + 0.3 + 0.4 + 0.5 + 0.6) / 5)
    make_report([run], tmp_path / "rep")
    assert "last 5 training epochs" in (tmp_path / "rep" / "table_v.md").read_text()


def test_sweep_report_groups_seeds_and_plots_effects(tmp_path):
    members = {}
    for u in (4, 8):
        for seed in (0, 1):
            base = u / 10 + seed / 100
            members[f"interval={u}__seed={seed}"] = {
                "params": {"comm.interval": u, "seed": seed}, "rewards": [0.0] * 6, "eval": [base] * 6}
    members["interval=16__seed=0"] = {"params": {"comm.interval": 16, "seed": 0}, "status": "pending", "rewards": None}
    sweep = write_sweep(tmp_path / "sw", members)
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out)]) == 0
    groups, swept = collect([sweep])
    assert swept == ["comm.interval"]
    assert [g.label for g in groups] == ["interval=4", "interval=8"]  # the member not run yet is left out
    assert [len(g.runs) for g in groups] == [2, 2]
    with open(out / "table_v.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[0]["reward_mean"]) == pytest.approx(0.405)
    assert float(rows[0]["reward_std"]) == pytest.approx(0.005)
    assert (out / "effect_interval.png").is_file()
    assert (out / "comm_interval=4.png").is_file()
    with open(out / "learning_curves.csv") as fh:
        curve = [r for r in csv.DictReader(fh) if r["configuration"] == "interval=8"]
    assert len(curve) == 6 and all(r["seeds"] == "2" for r in curve)
    assert float(curve[0]["reward_mean"]) == pytest.approx(0.805)


def test_not_a_run_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "neither a run directory" in err and "Traceback" not in err


def test_cli_report_runs_without_torch(tmp_path):
    run = write_run(tmp_path / "r", [0.1, 0.2], eval_rewards=[0.3, 0.4])
    code = ("import sys; from cosim.cli.main import main; rc = main(['report', sys.argv[1]]); "
            "sys.exit(rc or (3 if 'torch' in sys.modules else 0))")
    result = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (run / "report" / "table_v.md").is_file()


def test_a_non_learning_run_is_a_reference_level(tmp_path):
    learning = write_run(tmp_path / "sac", [0.1, 0.2, 0.3])
    idm = write_run(tmp_path / "idm", [0.4, 0.5, 0.6])
    (idm / "config.yaml").write_text("learner: idm\n")
    groups, _ = collect([learning, idm])
    from cosim.cli.report import reference_level

    by_label = {g.label: g for g in groups}
    assert reference_level(by_label["sac"]) is None
    assert reference_level(by_label["idm"]) == pytest.approx(0.5)
    make_report([learning, idm], tmp_path / "report")
    assert (tmp_path / "report" / "learning_curves.png").stat().st_size > 1000
