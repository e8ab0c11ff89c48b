"""``python -m digits.serve``: the drawing page and its HTTP API (LitServe).

The command keeps its short name; its code is ``digits.reading.serve``.
"""

from digits.reading.serve.__main__ import main

if __name__ == "__main__":
    main()
