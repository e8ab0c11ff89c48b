"""What ``python -m digits.fit`` does besides the three steps, one feature per module.

- ``checkpoints``: checkpoints written safely, the latest best epoch kept, Ctrl-C saved
- ``folders``: every run in its own folder, a resumed run in the one it continues
- ``resume``: what a checkpoint brings to a run that starts from it
- ``tensorboard``: the run's TensorBoard log: hyperparameters against real metrics
- ``pictures``: confusion matrices and digit grids in TensorBoard's Images tab
- ``summary``: test the best checkpoint and say where everything is
- ``output``: keep what Lightning prints to what a user can act on
"""
