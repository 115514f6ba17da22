"""The project says under which license anybody may use it (issue 16): a LICENSE file with the
MIT text, the SPDX expression in pyproject.toml that setuptools turns into package metadata
without a deprecation warning, and a License section in the README."""

from __future__ import annotations

import subprocess
import sys

import pytest

from robust_kit import ROOT


def test_license_file_holds_the_mit_text():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "MIT License"
    assert "Copyright (c)" in text
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_pyproject_names_the_license():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]


def test_package_metadata_carries_the_license(tmp_path):
    """What pip installs: setuptools writes License-Expression and the file, and warns of nothing."""
    code = ("import sys, warnings; warnings.simplefilter('always'); from setuptools import build_meta; "
            "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    metadata = (tmp_path / proc.stdout.strip().splitlines()[-1] / "METADATA").read_text(encoding="utf-8")
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()


def test_readme_says_which_license():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## License\n" in readme
    section = readme.split("\n## License\n", 1)[1]
    assert "MIT" in section and "[LICENSE](LICENSE)" in section
