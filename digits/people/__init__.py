"""Other people's digits and non-digits, composed into a run from outside the core.

- ``pen_digits``: UCI's pen digits drawn as the page draws them; ``PenDigits``, a data source
- ``non_digits``: generated non-digits; ``NonDigits``, a data source with spread targets
- ``preprocess``: a drawing or a list of pixels as the data set's 64 values
- ``augment``: ``Shift`` and ``Handwriting``, transforms of a training batch
- ``drawn``: ``python -m digits.drawn``, a checkpoint scored on drawn digits
"""
