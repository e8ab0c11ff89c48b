"""``python -m digits.predict``: digits read from images or arrays with a checkpoint.

The command keeps its short name; its code is ``digits.reading.predict``.
"""

from digits.reading.predict import main

if __name__ == "__main__":
    main()
