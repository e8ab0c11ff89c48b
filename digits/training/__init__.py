"""What ``python -m digits.fit`` composes into every run besides the three steps, one job each.

- ``checkpoints``: checkpoints written safely, the latest best epoch kept
- ``interrupt``: Ctrl-C and SIGTERM stop every process at the same batch, saved once
- ``divergence``: a training loss that is no longer finite ends the run in one line
- ``folders``: every run in its own folder, a resumed run in the one it continues
- ``resume``: what a checkpoint brings to a run that starts from it
- ``calibrate``: the temperature and "sure" threshold fitted after training, kept in the checkpoint
- ``tensorboard``: the run's TensorBoard log: hyperparameters against real metrics
- ``pictures``: confusion matrices and digit grids in TensorBoard's Images tab
- ``figures``: the pictures themselves, drawn with matplotlib (the tools draw them too)
- ``summary``: test the best checkpoint and say where everything is
- ``output``: keep what Lightning prints to what a user can act on
- ``lightning_internals``: the one module that relies on Lightning's internals
"""
