"""scripts/mutants.py stays runnable: every mutant still finds the code it breaks.

The script itself stops at a mutant whose text is gone, but only when someone runs it;
code changed since a mutant was written would otherwise leave it silently stale.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import script

REPO = Path(__file__).resolve().parents[1]


def test_every_mutant_changes_code_that_is_there_once():
    mutants = script("mutants").MUTANTS
    stale = [
        f"{mutant.name}: {file}"
        for mutant in mutants
        for file, old, _ in mutant.edits
        if (REPO / file).read_text().count(old) != 1
    ]
    assert stale == []
    assert len({mutant.name for mutant in mutants}) == len(mutants), "two mutants share a name"
