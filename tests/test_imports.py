"""What importing costs: tools that do not train stay clear of Lightning; imports do nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

TRAINING_LIBRARIES = ("lightning", "pytorch_lightning", "torchmetrics")


def modules_loaded_by(code: str, *args: str) -> list[str]:
    """The module names a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def training_libraries_in(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in TRAINING_LIBRARIES]


def test_predict_reads_digits_without_importing_lightning(trained: Path, tmp_path: Path):
    rows = tmp_path / "rows.npy"
    np.save(rows, load_digits().data[:3])
    run_predict = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('digits.predict', run_name='__main__')\n"
        "except SystemExit as exit_:\n"
        "    assert not exit_.code, exit_.code"
    )
    modules = modules_loaded_by(run_predict, "--ckpt_path", str(trained), str(rows))
    assert "digits.reading.trained" in modules and "torch" in modules  # it did predict
    assert training_libraries_in(modules) == []


@pytest.mark.parametrize(
    "module", ["digits.bench.__main__", "digits.baseline", "digits.export", "digits.dataset"]
)
def test_tools_that_do_not_train_import_no_training_library(module: str):
    assert training_libraries_in(modules_loaded_by(f"import {module}")) == []


def test_importing_any_module_changes_no_warning_or_logging_setting():
    probe = """
import importlib, json, logging, pkgutil, warnings
import digits

def settings():
    loggers = logging.root.manager.loggerDict.values()
    return (
        [repr(f) for f in warnings.filters],
        sorted(
            (l.name, l.level, len(l.filters)) for l in loggers if isinstance(l, logging.Logger)
        ),
    )

names = [m.name for m in pkgutil.walk_packages(digits.__path__, "digits.")]
# Their own settings, made on import, are not ours (sqlalchemy sets its logger to WARNING).
import lightning, litserve, optuna, optuna_integration.pytorch_lightning, torchmetrics  # noqa
import sqlalchemy  # noqa
before = settings()
for name in names:
    importlib.import_module(name)
after = settings()
# New loggers of the libraries imported on the way are fine; levels and filters are not.
changed = [logger for logger in after[1] if logger not in before[1] and logger[1:] != (0, 0)]
print(json.dumps({"names": names, "same": before[0] == after[0] and not changed}))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "digits.training.output" in report["names"] and "digits.fit" in report["names"]
    assert report["same"]


# What a feature imports when it is used, not when the core is imported.
FEATURE_LIBRARIES = ("kornia", "matplotlib", "scipy", "optuna", "litserve", "PIL")


def test_the_core_imports_no_feature_library_lightning_does_not_import_itself():
    """Lightning 2.6 (through torchmetrics and torch._dynamo) loads matplotlib and scipy."""
    probe = (
        "import sys, json, lightning, torchmetrics\n"
        "before = set(sys.modules)\n"
        "import digits.data, digits.model, digits.cli, digits.fit\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    added = json.loads(result.stdout.strip().splitlines()[-1])
    assert "digits.model" in added  # it did import them
    assert [name for name in added if name.split(".")[0] in FEATURE_LIBRARIES] == []
