"""``python -m digits.export``: a checkpoint as ONNX or TorchScript.

The command keeps its short name; its code is ``digits.reading.export``.
"""

from digits.reading.export import main

if __name__ == "__main__":
    main()
