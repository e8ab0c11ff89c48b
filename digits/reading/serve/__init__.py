"""``python -m digits.serve``: draw a digit in the browser and watch the model read it.

- ``api``: the LitServe API (a checkpoint's network behind ``POST /predict``) and what
  a request may hold
- ``app``: the server around it: the page at ``/``, one-line JSON errors, the body limit
- ``page.html``: the page itself, with no outside resources
- ``__main__``: the command line
"""
