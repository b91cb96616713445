"""Every reference from code or docs to a project document resolves inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = [
    p
    for pattern in ("hubmodels/**/*.py", "tests/*.py", "experiments/*.py", "bench/*.py", "*.py")
    for p in ROOT.glob(pattern)
]
# "docs/methods.md 2.2", "docs/methods.md section 4", "docs/sampling.md"
REFERENCE = re.compile(r"docs/(\w+)\.md(?:,? (?:section )?(\d+(?:\.\d+)?))?")


def _references() -> list[tuple[str, str, str | None]]:
    found = []
    for path in SOURCES:
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
            found.append((path.relative_to(ROOT).as_posix(), match.group(1), match.group(2)))
    return found


def test_code_cites_documents_that_exist_with_the_sections_it_names():
    missing = []
    for source, doc, section in _references():
        target = ROOT / "docs" / f"{doc}.md"
        if not target.is_file():
            missing.append(f"{source}: docs/{doc}.md")
            continue
        if section and not re.search(rf"^#+ {re.escape(section)}[ .]", target.read_text(), re.M):
            missing.append(f"{source}: docs/{doc}.md section {section}")
    assert not missing, "\n".join(sorted(set(missing)))
    assert len(_references()) > 50  # the code does cite them


@pytest.mark.parametrize("path", [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md")], ids=str)
def test_no_document_points_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "design.md" not in text


def test_no_code_points_outside_the_repository():
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in SOURCES
        if p.name != Path(__file__).name  # this file names what it looks for
        and "../shared" in p.read_text(encoding="utf-8")
        or p.name != Path(__file__).name
        and re.search(r"(?<!docs/)\b(methods|design)\.md", p.read_text(encoding="utf-8"))
    ]
    assert not offenders
