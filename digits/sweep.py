"""``python -m digits.sweep``: a cross-validated Optuna sweep.

The command keeps its short name; its code is ``digits.tools.sweep``.
"""

from digits.tools.sweep.__main__ import main

if __name__ == "__main__":
    main()
