"""The docs/ folder: the generated key reference is up to date, links resolve, nothing points
outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from cosim.cli import docgen

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_scenario_keys_is_up_to_date():
    current = (DOCS / "scenario-keys.md").read_text(encoding="utf-8")
    assert current == docgen.generate(), "docs/scenario-keys.md is out of date: run python -m cosim.cli.docgen"


def test_every_schema_key_is_documented():
    from cosim.config.schema import ScenarioConfig

    text = (DOCS / "scenario-keys.md").read_text(encoding="utf-8")
    for name in ScenarioConfig.model_fields:
        assert f"| `{name}` |" in text
    for key in ("comm.interval", "channel.radio.params", "train.eval_every", "sac.batch_size", "env.horizon"):
        assert f"| `{key}` |" in text


def test_docs_links_resolve_and_stay_inside_the_repository():
    files = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.parent == DOCS:
            assert "../" + "shared" not in text and "/work/" + "shared" not in text, path
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_readme_links_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("design.md", "scenario-keys.md", "metrics.md", "results.md"):
        assert (DOCS / name).is_file()
        assert f"docs/{name}" in readme


def test_no_file_points_outside_the_repository():
    """Users have the repository only: no file may send them to the authors' reference desk."""
    import subprocess

    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): every file on disk
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    forbidden = ("../" + "shared", "/work/" + "shared", "REFERENCE" + ".md", "DESIGN" + ".md")
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".png", ".pt", ".gz"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}: {word}" for word in forbidden if word in text]
    assert not offenders, offenders
