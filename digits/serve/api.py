"""The model behind ``POST /predict``, as a LitServe API.

A request is checked and made into the data set's 64 pixels in the HTTP server, before
it is queued: LitServe decodes a whole batch of requests together, so a request that
failed there would fail the good requests batched with it. The inference workers then
only scale, run the network and answer.
"""

# No `from __future__ import annotations` here: LitServe reads decode_request's parameter
# annotation to build the endpoint, and FastAPI needs the class itself, not its name.
from typing import Any

import litserve as ls
import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from digits.inference import TrainedNetwork, load_trained
from digits.preprocess import checked_digits, data_url_to_image, image_to_digit


class DigitRequest(BaseModel):
    """``{"pixels": [64 numbers in 0..16]}`` or ``{"image": "data:image/png;base64,..."}``."""

    model_config = ConfigDict(extra="forbid")

    pixels: Any = None
    image: Any = None
    _digit: np.ndarray = PrivateAttr()

    @model_validator(mode="after")
    def one_digit(self) -> "DigitRequest":
        if (self.pixels is None) == (self.image is None):
            raise ValueError('send either "pixels" (64 numbers in 0..16) or "image" (a data URL)')
        if self.image is not None:
            if not isinstance(self.image, str):
                raise ValueError('"image" must be a string: data:image/png;base64,...')
            self._digit = image_to_digit(data_url_to_image(self.image))
        else:
            digits = checked_digits(self.pixels)
            if len(digits) != 1:
                raise ValueError(f'"pixels" must hold one digit, got {len(digits)}')
            self._digit = digits[0]
        return self

    @property
    def digit(self) -> np.ndarray:
        """The 64 pixels in 0..16 the model reads."""
        return self._digit


class DigitsAPI(ls.LitAPI):
    """A trained checkpoint's network: pixels in, digit and probabilities out."""

    def __init__(self, ckpt_path: str, max_batch_size: int = 1, batch_timeout: float = 0.0):
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.ckpt_path = ckpt_path

    def setup(self, device: str) -> None:
        self.trained: TrainedNetwork = load_trained(self.ckpt_path)

    def decode_request(self, request: DigitRequest) -> np.ndarray:
        return request.digit

    def predict(self, pixels: np.ndarray) -> list[dict[str, Any]]:
        """One digit (64,), or a batch (N, 64) that LitServe's default ``batch`` stacked."""
        rows = np.atleast_2d(pixels)
        probabilities = self.trained.probabilities(rows)
        answers = [reading(row, p) for row, p in zip(rows, probabilities, strict=True)]
        return answers if pixels.ndim == 2 else answers[0]

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


def reading(pixels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """What the server answers for one digit."""
    digit = int(probabilities.argmax())
    return {
        "digit": digit,
        "probability": float(probabilities[digit]),
        "probabilities": [float(p) for p in probabilities],
        "pixels": pixels.reshape(8, 8).round(3).tolist(),  # the 8x8 image the model saw
    }


class ConstantAPI(DigitsAPI):
    """The same HTTP stack answering a constant: the floor the load benchmark compares with."""

    ANSWER = reading(np.zeros(64, dtype=np.float32), np.full(10, 0.1))

    def setup(self, device: str) -> None:
        pass  # no model

    def predict(self, pixels: np.ndarray) -> list[dict[str, Any]]:
        answers = [self.ANSWER] * len(np.atleast_2d(pixels))
        return answers if pixels.ndim == 2 else answers[0]
