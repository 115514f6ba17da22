"""docs/extending.md: its three plug-in examples (a radio model, a mixing rule, a medium), each
copied from the page into a package of its own in a temporary directory outside the repository
and run for one epoch with the page's own command line (plus settings that make one short epoch
pull and mix policies). Real SUMO, SimPy and torch."""

from __future__ import annotations

import csv
import math
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
# one short epoch in which SAC agents update their policies and CommMix rounds pull and mix
SHORT = ("train.epochs=1", "env.horizon=80", "train.warmup_steps=20", "sac.batch_size=16", "sac.policy_delay=1",
         "comm.interval=1")


def doc_files() -> dict[str, str]:
    """The page's Python files: every ```python block whose first line is ``# <path>.py``."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        first, _, rest = block.partition("\n")
        match = re.fullmatch(r"# ([\w/]+\.py)", first.strip())
        if match:
            files[match.group(1)] = rest
    return files


def doc_command(plugin: str) -> list[str]:
    """The page's ``cosim run`` line that names ``plugin``, as arguments after ``cosim``."""
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            if line.startswith("cosim run") and plugin in line:
                return shlex.split(line)[1:]
    raise AssertionError(f"docs/extending.md has no cosim run line naming {plugin}")


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("plugin_packages")
    assert not where.resolve().is_relative_to(ROOT)
    for name, text in doc_files().items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return where


def run_example(packages: Path, tmp_path: Path, monkeypatch, capsys, plugin: str) -> dict[str, str]:
    from cosim.cli.main import main

    monkeypatch.syspath_prepend(str(packages))
    monkeypatch.chdir(ROOT)  # the page's command lines name scenarios/... from the repository root
    argv = doc_command(plugin)
    for setting in SHORT:
        argv += ["--set", setting]
    out = tmp_path / "run"
    rc = main(argv + ["--out", str(out), "--no-progress", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    assert "Traceback" not in captured.err
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1
    return rows[0]


def test_the_page_holds_three_packages_and_a_short_rule():
    files = doc_files()
    assert {"my_radio/models.py", "my_rules/better.py", "my_media/tdma.py"} <= set(files)
    assert {"my_radio/__init__.py", "my_rules/__init__.py", "my_media/__init__.py"} <= set(files)
    assert len(files["my_rules/better.py"].strip().splitlines()) < 40  # a new rule: under 40 lines


def test_radio_model_example_runs_an_epoch(packages, tmp_path, monkeypatch, capsys):
    row = run_example(packages, tmp_path, monkeypatch, capsys, "my_radio.models:LinearFade")
    assert float(row["v2v_mean_links"]) > 0
    assert int(row["segments_received"]) > 0  # policies travelled over the faded links
    assert int(row["channel_packets_lost"]) > 0  # the fade loses packets (unit disk at PRR 1 loses none)


def test_mixing_rule_example_runs_an_epoch(packages, tmp_path, monkeypatch, capsys):
    row = run_example(packages, tmp_path, monkeypatch, capsys, "my_rules.better:BetterOnly")
    assert int(row["rho_total"]) > 0  # complete replicas reached the rule
    assert int(row["mix_nonfinite_skips"]) == 0
    if int(row["rho_ef"]):  # every mix it made used its step, 0.3 on the page's command line
        assert float(row["mix_zeta_mean"]) == pytest.approx(0.3)
    else:
        assert math.isnan(float(row["mix_zeta_mean"]))


def test_medium_example_runs_an_epoch(packages, tmp_path, monkeypatch, capsys):
    row = run_example(packages, tmp_path, monkeypatch, capsys, "my_media.tdma:TdmaMedium")
    assert int(row["segments_received"]) > 0  # transfers went through the TDMA slots
    # the medium's own columns: every attempt it reported is a packet the channel counted
    assert int(row["mac_frames_sent"]) == int(row["channel_packets"]) > 0
    assert int(row["mac_frames_lost_collision"]) == 0
    assert math.isnan(float(row["channel_busy_ratio_mean"]))  # left out: the link-only value
