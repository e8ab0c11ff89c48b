"""A trained model, read without Lightning: the tools that use a checkpoint.

- ``checkpoint``: the checkpoint file, written atomically, read safely, older ones upgraded
- ``trained``: ``TrainedNetwork``, the network, its input scaling and its calibration
- ``sure``: temperature scaling and the "sure" threshold, the method
- ``moved_settings``: earlier configs and checkpoints read as today's, old flags naming the new
- ``predict``, ``export``, ``serve``: ``python -m digits.predict``, ``.export``, ``.serve``
"""
