"""``python -m digits.drawn``: a checkpoint scored on pen digits drawn as the page draws them.

The command keeps its short name; its code is ``digits.people.drawn``.
"""

from digits.people.drawn import main

if __name__ == "__main__":
    main()
