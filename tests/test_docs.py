"""The docs/ folder: the generated key reference is up to date, links resolve, nothing points
outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from cosim import docgen

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_scenario_keys_is_up_to_date():
    current = (DOCS / "scenario-keys.md").read_text(encoding="utf-8")
    assert current == docgen.generate(), "docs/scenario-keys.md is out of date: run python -m cosim.docgen"


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
            assert "../shared" not in text and "/work/shared" not in text, path
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_readme_links_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("design.md", "scenario-keys.md", "metrics.md", "results.md"):
        assert (DOCS / name).is_file()
        assert f"docs/{name}" in readme
