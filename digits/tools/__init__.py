"""Tools around training: scikit-learn's baselines, comparisons over splits, the sweep.

- ``baseline``: ``python -m digits.baseline``
- ``compare``: ``python -m digits.compare``
- ``sweep``: ``python -m digits.sweep``, a cross-validated Optuna study
"""
