"""``python -m digits.baseline``: scikit-learn's models on the same split.

The command keeps its short name; its code is ``digits.tools.baseline``.
"""

from digits.tools.baseline import main

if __name__ == "__main__":
    main()
