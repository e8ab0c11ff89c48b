"""The learner's notebooks: they run, they show what they promise, and the languages agree.

The English and the Chinese notebook share their code cells and differ only in prose; the
English and the Chinese README share their commands. The tests here fail as soon as one
language changes alone. A number the prose states in bold (**0.9756**) must be one that
the code cell just above it prints, in the committed outputs and in a fresh run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

from tests.conftest import script

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "notebooks" / "three_steps.ipynb"
CHINESE = ROOT / "notebooks" / "three_steps.zh-CN.ipynb"
NOTEBOOKS = (ENGLISH, CHINESE)
READMES = (ROOT / "README.md", ROOT / "README.zh-CN.md")

BOLD_NUMBER = re.compile(r"\*\*(-?\d[\d,]*(?:\.\d+)?)\*\*")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
FENCED_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
# What the committed outputs must show: the plain Lightning run's loss curve, the digit
# grid, the curves, the confusion matrix and the drawn PNG beside what the model saw.
PICTURES = 5


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def commands(markdown: str) -> list[str]:
    """The README's code blocks, in order: what a reader copies."""
    return [block.strip() for block in FENCED_BLOCK.findall(markdown)]


def output_text(cell: nbformat.NotebookNode) -> str:
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif "data" in output:
            texts.append(output.data.get("text/plain", ""))
    return "\n".join(texts)


def unprinted_numbers(notebook: nbformat.NotebookNode) -> list[str]:
    """Bold numbers in the prose that the code cell above it does not print."""
    missing = []
    printed: set[str] | None = None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            printed = {number.replace(",", "") for number in NUMBER.findall(output_text(cell))}
            continue
        for number in BOLD_NUMBER.findall(cell.source):
            if printed is None or number.replace(",", "") not in printed:
                missing.append(f"cell {index}: {number}")
    return missing


def pictures(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def errors(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        f"{output.ename}: {output.evalue}"
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, nbformat.NotebookNode]:
    """Both notebooks run top to bottom in fresh kernels, each in an empty folder."""
    runner = script("run_notebooks")
    return {
        path: runner.execute(path, tmp_path_factory.mktemp(path.stem.replace(".", "_")))
        for path in NOTEBOOKS
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=["english", "chinese"])
@pytest.mark.slow
def test_each_notebook_runs_and_shows_its_pictures(executed, path: Path):
    notebook = executed[path]
    assert errors(notebook) == []
    assert pictures(notebook) == PICTURES
    # The training cell printed the run's summary, and the PNG was read by predict.
    everything = "\n".join(output_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "test/acc" in everything and "drawn.png:" in everything


@pytest.mark.parametrize("path", NOTEBOOKS, ids=["english", "chinese"])
@pytest.mark.slow
def test_the_numbers_in_the_prose_are_the_ones_a_fresh_run_prints(executed, path: Path):
    notebook = executed[path]
    assert BOLD_NUMBER.search("\n".join(cell.source for cell in notebook.cells))
    assert unprinted_numbers(notebook) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=["english", "chinese"])
def test_the_committed_notebook_holds_its_outputs(path: Path):
    notebook = read(path)
    assert all(cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code")
    assert errors(notebook) == []
    assert pictures(notebook) == PICTURES
    assert unprinted_numbers(notebook) == []
    # No path of the machine that ran it (a warning's file name would show one).
    assert "site-packages" not in path.read_text(encoding="utf-8")


def test_the_two_notebooks_have_the_same_code_cells():
    english, chinese = (code_cells(read(path)) for path in NOTEBOOKS)
    assert english and english == chinese


def test_the_two_readmes_have_the_same_commands():
    english, chinese = (commands(path.read_text(encoding="utf-8")) for path in READMES)
    assert english and english == chinese


def test_each_readme_links_to_the_other_in_its_first_lines():
    english, chinese = (path.read_text(encoding="utf-8").splitlines()[:5] for path in READMES)
    assert any("README.zh-CN.md" in line for line in english)
    assert any("README.md" in line and "zh-CN" not in line for line in chinese)


def test_the_checks_catch_a_change_in_one_language_only():
    """The drift checks above are not vacuous: one edited cell or command fails them."""
    chinese = read(CHINESE)
    edited = copy.deepcopy(chinese)
    first_code = next(cell for cell in edited.cells if cell.cell_type == "code")
    first_code.source += "\nprint('only in Chinese')"
    assert code_cells(read(ENGLISH)) == code_cells(chinese)
    assert code_cells(read(ENGLISH)) != code_cells(edited)

    readme = READMES[1].read_text(encoding="utf-8")
    first_command = commands(readme)[0]
    changed = readme.replace(first_command, first_command.replace("max_epochs 50", "max_epochs 5"))
    assert commands(changed) != commands(READMES[0].read_text(encoding="utf-8"))

    stated = next(cell for cell in edited.cells if BOLD_NUMBER.search(cell.source))
    stated.source = BOLD_NUMBER.sub("**12345**", stated.source, count=1)
    assert unprinted_numbers(edited) != []
