"""README's Python snippets run as written, from a folder outside the repository.

The blocks README marks as offline are concatenated in order (a reader pastes them into one
session) and run in a fresh interpreter whose working directory is a temporary folder, so they
import the installed package, not the checkout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MARKER = "<!-- runs offline, in order, from any folder: tests/test_readme_snippets.py -->"


def offline_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(re.escape(MARKER) + r"\n```python\n(.*?)```", text, re.S)


def test_readme_marks_its_offline_snippets():
    assert len(offline_snippets()) == 3  # classifiers, sampling, energies


@pytest.mark.slow
def test_readme_snippets_run_outside_the_repository(tmp_path):
    script = tmp_path / "readme.py"
    script.write_text("\n".join(offline_snippets()) + "\nprint('README OK')\n")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "README OK" in result.stdout
    assert (tmp_path / "my-model" / "model.safetensors").is_file()
