"""The README is a landing page whose figures come from the docs, and whose links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", ROOT / "README.zh-CN.md")
FENCE = re.compile(r"```.*?```", re.S)
# A measured figure: a decimal such as 0.9951 or 1.63 (not a version or a file name).
FIGURE = re.compile(r"(?<![\w.=/-])\d+\.\d+(?![\w+]|\.\d)")
NOT_FIGURES = re.compile(r"CC BY\s+\d\.\d|Python \d\.\d+\+")  # a licence, a version
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def prose(path: Path) -> str:
    """The text a reader reads as claims: everything but the code blocks (real output)."""
    return NOT_FIGURES.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))


def figures(text: str) -> list[str]:
    return FIGURE.findall(text)


def test_the_readme_is_at_most_200_lines():
    assert len(READMES[0].read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("path", READMES, ids=lambda path: path.name)
def test_every_figure_the_readme_gives_is_measured_in_the_docs(path: Path):
    docs = "\n".join(doc.read_text(encoding="utf-8") for doc in (ROOT / "docs").glob("*.md"))
    found = figures(prose(path))
    assert found, "the README gives results"
    missing = [figure for figure in found if figure not in docs]
    assert not missing, f"{path.name} gives figures no page of docs/ holds: {missing}"


def test_the_two_readmes_give_the_same_figures():
    english, chinese = (sorted(figures(prose(path))) for path in READMES)
    assert english == chinese


@pytest.mark.parametrize("path", READMES, ids=lambda path: path.name)
def test_every_link_in_the_readme_leads_to_a_file_here(path: Path):
    targets = [target for target in LINK.findall(path.read_text(encoding="utf-8"))]
    local = [target for target in targets if "://" not in target]
    assert local
    assert [target for target in local if not (ROOT / target).exists()] == []


def test_the_licence_and_changelog_are_beside_the_readme():
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").startswith("# Changelog")
