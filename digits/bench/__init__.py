"""``python -m digits.bench``: speed measured side by side, never asserted in a test.

- ``training``: ``python -m digits.fit`` against the tutorial's plain PyTorch loop
- ``sweep``: one sweep worker against two
- ``serve``: the server under load, against the same HTTP stack answering a constant
- ``report``: how the tables read
"""
