"""``python -m digits.compare``: the network and the baselines over several split seeds.

The command keeps its short name; its code is ``digits.tools.compare``.
"""

from digits.tools.compare import main

if __name__ == "__main__":
    main()
