"""Reports: plots and tables from run directories and sweep directories, from their CSV files only.

``cosim report DIR...`` (a run directory, holding ``metrics.csv``, or a sweep directory, holding
``sweep.csv``) writes into ``DIR/report/`` (or ``--out``):

- ``learning_curves.png`` / ``.csv``: average reward per epoch, mean +- std over seeds, one line
  per configuration. Evaluation rows (``phase == eval``) when the runs have them, else every row.
- ``comm_<configuration>.png``: heatmaps of the N x N matrices ``comm_segments_received.csv``
  and ``comm_mixes.csv`` (mean over seeds).
- ``effect_<key>.png``: for every numeric key a sweep varies (e.g. ``comm.interval``, the PRR
  ``channel.radio.params.prr``): final reward, psi and rho_r against the value.
- ``table_v.md`` / ``.csv``: the columns of RSM-MASAC's Table V per configuration (method, U, P,
  kappa, average reward of the last 5 evaluations as mean +- std over seeds, rho_total, psi (GB),
  rho_ef, rho_r), plus collisions and wall time.

Nothing here imports torch (this module must start fast); matplotlib is imported when plotting.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAST_EVALUATIONS = 5
MATRICES = {"segments_received": "comm_segments_received.csv", "mixes": "comm_mixes.csv"}
SUM_COLUMNS = ("rho_total", "psi_gb", "air_gb", "rho_ef", "messages", "collisions")
MEAN_COLUMNS = {"mix_zeta_mean": "zeta_mean", "mix_cap_share": "cap_share", "mix_q_mean": "q_mean"}
"""What decides a mix, as the mean over a run's training epochs (NaN epochs, without mixes, left out)."""


class ReportError(Exception):
    """A directory given to the report is not a run or sweep directory (message says why)."""


# ---------------------------------------------------------------------------- reading
def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [row for row in csv.DictReader(fh) if None not in row]  # torn last line dropped
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _read_matrix(path: Path):
    import numpy as np

    rows = _read_csv(path)
    if not rows:
        return None
    cols = [c for c in rows[0] if c.startswith("from_")]
    return np.array([[_float(r[c]) for c in cols] for r in rows], dtype=float)


@dataclass
class Run:
    path: Path
    params: dict[str, str]
    metrics: list[dict[str, str]]
    timing: list[dict[str, str]]
    config: dict
    matrices: dict[str, Any] = field(default_factory=dict)

    @property
    def train_rows(self) -> list[dict[str, str]]:
        return [r for r in self.metrics if r.get("phase", "train") in ("train", "")]

    @property
    def eval_rows(self) -> list[dict[str, str]]:
        return [r for r in self.metrics if r.get("phase") == "eval"]

    def reward_curve(self) -> tuple[list[int], list[float], bool]:
        """(epochs, reward, from evaluations): eval rows averaged per epoch when there are any."""
        rows = self.eval_rows
        evaluated = bool(rows)
        if not evaluated:
            rows = self.train_rows
        by_epoch: dict[int, list[float]] = {}
        for r in rows:
            epoch = int(_float(r.get("epoch")))
            by_epoch.setdefault(epoch, []).append(_float(r.get("avg_reward")))
        epochs = sorted(by_epoch)
        return epochs, [_nanmean(by_epoch[e]) for e in epochs], evaluated

    def summary(self) -> dict[str, float]:
        _, rewards, _ = self.reward_curve()
        train = self.train_rows
        out = {"reward_last5": _nanmean(rewards[-LAST_EVALUATIONS:])}
        for col in SUM_COLUMNS:
            values = [_float(r.get(col)) for r in train]
            values = [v for v in values if math.isfinite(v)]
            out[col] = sum(values) if values else float("nan")
        out["rho_r"] = out["rho_ef"] / out["rho_total"] if out["rho_total"] else float("nan")
        for col, name in MEAN_COLUMNS.items():
            out[name] = _nanmean([_float(r.get(col)) for r in train])
        walls = [_float(r.get("wall_time_s")) for r in self.timing]
        walls = [v for v in walls if math.isfinite(v)]
        out["wall_time_s"] = sum(walls) if walls else float("nan")
        out["epochs"] = float(len(train))
        return out


def summary_line(path: Path) -> str:
    """One line about a run directory, printed at the end of ``cosim run``: epochs, wall time,
    reward (last training epoch, last evaluations), collisions and what CommMix exchanged."""
    run = load_run(path)
    s = run.summary()
    train, evals = run.train_rows, run.eval_rows
    parts = [f"{len(train)} training epochs" + (f" + {len(evals)} evaluation epochs" if evals else ""),
             f"{s['wall_time_s']:.0f} s"]
    reward = f"reward {_fmt(_float(train[-1].get('avg_reward')))} (last epoch)" if train else "no epochs"
    if evals:
        reward += f", {_fmt(s['reward_last5'])} (last {min(LAST_EVALUATIONS, len(evals))} evaluations)"
    parts += [reward, f"collisions {_fmt(s['collisions'])}"]
    if math.isfinite(s["rho_total"]):
        parts.append(f"CommMix rho_total {_fmt(s['rho_total'])}, rho_r {_fmt(s['rho_r'])}, "
                     f"psi {_fmt(s['psi_gb'])} GB")
    return f"{path}: " + "; ".join(parts)


def _load_yaml(path: Path) -> dict:
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except Exception:  # noqa: BLE001 - a report works without the config
        return {}


def load_run(path: Path, params: dict[str, str] | None = None) -> Run:
    path = Path(path)
    if not (path / "metrics.csv").is_file():
        raise ReportError(f"{path}: no metrics.csv (not a cosim run directory, or the run has not finished an epoch)")
    run = Run(path, dict(params or {}), _read_csv(path / "metrics.csv"), _read_csv(path / "timing.csv"),
              _load_yaml(path / "config.yaml"))
    for name, filename in MATRICES.items():
        if (path / filename).is_file():
            m = _read_matrix(path / filename)
            if m is not None:
                run.matrices[name] = m
    return run


def _get(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass
class Group:
    """The runs of one configuration (they differ in the seed only)."""

    label: str
    params: dict[str, str]
    runs: list[Run] = field(default_factory=list)


def _short(keys: list[str]) -> dict[str, str]:
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            cand = ".".join(parts[-n:])
            if not any(o != key and (o == cand or o.endswith("." + cand)) for o in keys):
                out[key] = cand
                break
        else:
            out[key] = key
    return out


def collect(dirs: list[Path]) -> tuple[list[Group], list[str]]:
    """Groups of runs from run and sweep directories, and the swept keys (seed excluded)."""
    from cosim.cli.sweep import FIXED_COLUMNS, INDEX

    groups: dict[str, Group] = {}
    swept: list[str] = []
    for d in dirs:
        d = Path(d)
        if (d / INDEX).is_file():
            rows = _read_csv(d / INDEX)
            keys = [c for c in (list(rows[0]) if rows else []) if c not in FIXED_COLUMNS and c != "seed"]
            swept += [k for k in keys if k not in swept]
            short = _short(keys)
            found = 0
            for row in rows:
                run_dir = d / (row.get("run_dir") or row["member"])
                if not (run_dir / "metrics.csv").is_file():
                    continue
                params = {k: row[k] for k in keys}
                label = ", ".join(f"{short[k]}={v}" for k, v in params.items()) or d.name
                group = groups.setdefault(f"{d}|{label}", Group(label, params))
                group.runs.append(load_run(run_dir, params))
                found += 1
            if not found:
                raise ReportError(f"{d}: no member of this sweep has finished an epoch yet")
        elif (d / "metrics.csv").is_file():
            groups.setdefault(str(d), Group(d.name or str(d), {})).runs.append(load_run(d))
        else:
            raise ReportError(f"{d}: neither a run directory (metrics.csv) nor a sweep directory ({INDEX})")
    labels = [g.label for g in groups.values()]
    if len(set(labels)) < len(labels):  # same label from two sweeps: say where from
        for key, g in groups.items():
            if labels.count(g.label) > 1:
                g.label = f"{Path(key.split('|')[0]).name}: {g.label}"
    return list(groups.values()), swept


# ---------------------------------------------------------------------------- numbers
def _nanmean(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return sum(v) / len(v) if v else float("nan")


def _nanstd(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return float("nan")
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / len(v))


def curve(group: Group) -> tuple[list[int], list[float], list[float], list[int], bool]:
    """(epochs, mean, std, seeds counted) of the reward over the group's runs."""
    per_epoch: dict[int, list[float]] = {}
    evaluated = False
    for run in group.runs:
        epochs, rewards, ev = run.reward_curve()
        evaluated |= ev
        for e, r in zip(epochs, rewards):
            per_epoch.setdefault(e, []).append(r)
    epochs = sorted(per_epoch)
    return (epochs, [_nanmean(per_epoch[e]) for e in epochs], [_nanstd(per_epoch[e]) for e in epochs],
            [len(per_epoch[e]) for e in epochs], evaluated)


def table_rows(groups: list[Group]) -> list[dict[str, Any]]:
    """One row per configuration: the Table V columns (mean over seeds; reward mean and std)."""
    rows = []
    for g in groups:
        sums = [run.summary() for run in g.runs]
        config = g.runs[0].config
        row: dict[str, Any] = {"configuration": g.label, "seeds": len(g.runs)}
        row["method"] = _get(config, "comm.method") if config.get("learner", "sac") == "sac" else config.get("learner")
        row["U"] = _get(config, "comm.interval")
        row["P"] = _get(config, "comm.segments")
        row["kappa"] = _get(config, "comm.replicas")
        rewards = [s["reward_last5"] for s in sums]
        row["reward_mean"] = _nanmean(rewards)
        row["reward_std"] = _nanstd(rewards)
        for col in ("rho_total", "psi_gb", "air_gb", "rho_ef", "rho_r", "messages", "collisions", "wall_time_s",
                    "epochs", *MEAN_COLUMNS.values()):
            row[col] = _nanmean([s[col] for s in sums])
        rows.append(row)
    return rows


TABLE_COLUMNS = ("configuration", "seeds", "method", "U", "P", "kappa", "reward_mean", "reward_std", "rho_total",
                 "psi_gb", "rho_ef", "rho_r", "messages", "collisions", "wall_time_s", "epochs", "air_gb",
                 "zeta_mean", "cap_share", "q_mean")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan"
        if value.is_integer() and abs(value) < 1e12:
            return str(int(value))
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def table_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for r in rows:
        writer.writerow([r[c] if isinstance(r[c], str) else ("" if r[c] is None else repr(r[c])) for c in TABLE_COLUMNS])
    return buf.getvalue()


def table_markdown(rows: list[dict[str, Any]], evaluated: bool) -> str:
    source = (f"last {LAST_EVALUATIONS} evaluations" if evaluated
              else f"last {LAST_EVALUATIONS} training epochs (the runs have no evaluation rows)")
    head = ["configuration", "seeds", "method", "U", "P", "kappa", "average reward", "rho_total", "psi (GB)",
            "rho_ef", "rho_r", "collisions", "wall time (s)", "air (GB)", "zeta", "at cap"]
    lines = [f"Average reward: {source}, mean +- std over seeds. rho_total, psi, rho_ef, collisions, wall "
             "time and air (what the channel carried, lost segments and retransmissions included): summed "
             "over a run's training epochs, mean over seeds; rho_r = rho_ef / rho_total. zeta and at cap: the "
             "mean mixture metric of the mixes and the share of them at zeta_max, mean over training epochs "
             "and seeds.", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        rho_r = f"{100 * r['rho_r']:.2f}%" if math.isfinite(r["rho_r"]) else "nan"
        cells = [r["configuration"].replace("|", "/"), str(r["seeds"]), _fmt(r["method"]), _fmt(r["U"]),
                 _fmt(r["P"]), _fmt(r["kappa"]), f"{_fmt(r['reward_mean'])} +- {_fmt(r['reward_std'])}",
                 _fmt(r["rho_total"], 6), _fmt(r["psi_gb"]), _fmt(r["rho_ef"], 6), rho_r, _fmt(r["collisions"]),
                 _fmt(round(r["wall_time_s"], 1)), _fmt(r["air_gb"]), _fmt(r["zeta_mean"], 3),
                 _fmt(r["cap_share"], 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from cosim.run.rundir import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("._")[:120] or "run"


NON_LEARNING = ("idm", "random")


def reference_level(group: Group) -> float | None:
    """The mean reward of a group whose learner does not learn (``idm``, ``random``) over all its
    points, drawn as a horizontal reference line; None for learning groups."""
    if group.runs[0].config.get("learner", "sac") not in NON_LEARNING:
        return None
    values = [m for m in curve(group)[1] if math.isfinite(m)]
    return sum(values) / len(values) if values else None


def plot_learning_curves(groups: list[Group], out: Path) -> list[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["configuration", "epoch", "reward_mean", "reward_std", "seeds"])
    evaluated_any = False
    all_epochs = [e for g in groups for e in curve(g)[0]]
    for g in groups:
        epochs, mean, std, n, evaluated = curve(g)
        evaluated_any |= evaluated
        for row in zip(epochs, mean, std, n):
            writer.writerow([g.label, row[0], repr(row[1]), repr(row[2]), row[3]])
        level = reference_level(g)
        if level is not None and all_epochs:  # a controller that does not learn: one level
            ax.axhline(level, color="0.3", linestyle="--", linewidth=1.2,
                       label=f"{g.label} (does not learn; mean {level:.3f})")
            continue
        line, = ax.plot(epochs, mean, label=g.label, marker="o" if len(epochs) < 30 else None, ms=3)
        lo = [m - s for m, s in zip(mean, std)]
        hi = [m + s for m, s in zip(mean, std)]
        ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("training epoch")
    ax.set_ylabel("average reward" + (" (evaluation)" if evaluated_any else " (training)"))
    ax.set_title("Learning curves (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if len(groups) > 1:
        long = len(groups) > 4 or max(len(g.label) for g in groups) > 40
        if long:  # below the axes, where it hides no curve
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.14), frameon=False)
        else:
            ax.legend(fontsize=7, loc="best")
    paths = [out / "learning_curves.png", out / "learning_curves.csv"]
    _save(fig, paths[0])
    from cosim.run.rundir import atomic_write_text

    atomic_write_text(paths[1], buf.getvalue())
    return paths


def plot_heatmaps(groups: list[Group], out: Path) -> list[Path]:
    import numpy as np

    plt = _pyplot()
    paths = []
    for g in groups:
        panels = []
        for name, title in (("segments_received", "segments received (row i from column j)"),
                            ("mixes", "mixed replicas of i holding part of j's policy")):
            ms = [r.matrices[name] for r in g.runs if name in r.matrices]
            if ms and all(m.shape == ms[0].shape for m in ms):
                panels.append((title, np.mean(ms, axis=0)))
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(5.8 * len(panels), 4.6), squeeze=False)
        fig.subplots_adjust(wspace=0.35)
        for ax, (title, m) in zip(axes[0], panels):
            im = ax.imshow(m, cmap="viridis", origin="upper")
            step = max(1, m.shape[0] // 15)
            ax.set_xticks(range(0, m.shape[1], step))
            ax.set_yticks(range(0, m.shape[0], step))
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("from agent j")
            ax.set_ylabel("agent i")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(f"{g.label} (cumulative over epochs, mean over {len(g.runs)} seed(s))", fontsize=10)
        path = out / f"comm_{_slug(g.label)}.png"
        _save(fig, path)
        paths.append(path)
    return paths


def _number(text: str) -> float | None:
    value = _float(text)
    return value if math.isfinite(value) else None


def plot_effects(groups: list[Group], swept: list[str], out: Path) -> list[Path]:
    """For each numeric swept key with several values: reward, psi and rho_r against it, one line
    per combination of the other swept keys."""
    plt = _pyplot()
    paths = []
    short = _short(swept)
    for key in swept:
        values = {g.params.get(key) for g in groups if key in g.params}
        if len(values) < 2 or any(_number(v) is None for v in values):
            continue
        lines: dict[str, list[tuple[float, dict[str, float], dict[str, float]]]] = {}
        for g in groups:
            if key not in g.params:
                continue
            others = ", ".join(f"{short[k]}={v}" for k, v in g.params.items() if k != key)
            sums = [r.summary() for r in g.runs]
            mean = {c: _nanmean([s[c] for s in sums]) for c in ("reward_last5", "psi_gb", "rho_r")}
            std = {c: _nanstd([s[c] for s in sums]) for c in ("reward_last5", "psi_gb", "rho_r")}
            lines.setdefault(others, []).append((_number(g.params[key]), mean, std))
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for others, points in lines.items():
            points.sort(key=lambda p: p[0])
            xs = [p[0] for p in points]
            for ax, col in zip(axes, ("reward_last5", "psi_gb", "rho_r")):
                ax.errorbar(xs, [p[1][col] for p in points], yerr=[p[2][col] for p in points], marker="o",
                            capsize=3, label=others or None)
        for ax, title in zip(axes, (f"final reward (last {LAST_EVALUATIONS} evaluations)", "psi (GB per run)",
                                    "rho_r = rho_ef / rho_total")):
            ax.set_xlabel(key)
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
        if len(lines) > 1:
            axes[0].legend(fontsize=7)
        fig.suptitle(f"Effect of {key} (mean ± std over seeds)", fontsize=10)
        path = out / f"effect_{_slug(short[key])}.png"
        _save(fig, path)
        paths.append(path)
    return paths


def make_report(dirs: list[Path], out: Path | None = None) -> list[Path]:
    """Write the report of ``dirs`` into ``out`` (default: the first directory's ``report/``)."""
    from cosim.run.rundir import atomic_write_text

    groups, swept = collect([Path(d) for d in dirs])
    out = Path(out) if out is not None else Path(dirs[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)
    paths = plot_learning_curves(groups, out)
    paths += plot_heatmaps(groups, out)
    paths += plot_effects(groups, swept, out)
    rows = table_rows(groups)
    evaluated = any(run.eval_rows for g in groups for run in g.runs)
    atomic_write_text(out / "table_v.md", table_markdown(rows, evaluated))
    atomic_write_text(out / "table_v.csv", table_csv(rows))
    return paths + [out / "table_v.md", out / "table_v.csv"]


# ---------------------------------------------------------------------------- command line
def add_arguments(parser) -> None:
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="run directories or sweep directories")
    parser.add_argument("--out", type=Path, help="report directory (default: DIR/report of the first DIR)")


def cli(args) -> int:
    try:
        paths = make_report(args.dirs, args.out)
    except (ReportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="cosim report", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return cli(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
