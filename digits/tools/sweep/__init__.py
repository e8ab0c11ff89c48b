"""``python -m digits.sweep``: choose the settings by cross-validation with Optuna.

- ``space``: the search space file and how a trial's values become ``digits.fit`` arguments
- ``objective``: one trial, every fold trained in-process through ``digits.fit``
- ``study``: the study's storage, heartbeat and the loop each worker runs
- ``report``: the top trials, parameter importances and the winner's ``best.yaml``
- ``__main__``: the command line, its checks and the worker processes
"""
