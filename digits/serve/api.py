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

from digits.inference import Reading, TrainedNetwork, load_trained
from digits.preprocess import Drawing, checked_digits, data_url_to_image, read_drawing


class DigitRequest(BaseModel):
    """``{"pixels": [64 numbers in 0..16]}`` or ``{"image": "data:image/png;base64,..."}``."""

    model_config = ConfigDict(extra="forbid")

    pixels: Any = None
    image: Any = None
    _drawing: Drawing = PrivateAttr()

    @model_validator(mode="after")
    def one_digit(self) -> "DigitRequest":
        if (self.pixels is None) == (self.image is None):
            raise ValueError('send either "pixels" (64 numbers in 0..16) or "image" (a data URL)')
        if self.image is not None:
            if not isinstance(self.image, str):
                raise ValueError('"image" must be a string: data:image/png;base64,...')
            self._drawing = read_drawing(data_url_to_image(self.image))
        else:
            digits = checked_digits(self.pixels)
            if len(digits) != 1:
                raise ValueError(f'"pixels" must hold one digit, got {len(digits)}')
            self._drawing = Drawing(digits[0], extent=1.0)  # pixels say nothing of size
        return self

    @property
    def drawing(self) -> Drawing:
        """The 64 pixels in 0..16 the model reads, and whether the drawing is too small."""
        return self._drawing


class DigitsAPI(ls.LitAPI):
    """A trained checkpoint's network: pixels in; digit, probabilities and "sure" out.

    ``threshold`` replaces the checkpoint's own "sure" threshold when given.
    """

    def __init__(
        self,
        ckpt_path: str,
        max_batch_size: int = 1,
        batch_timeout: float = 0.0,
        threshold: float | None = None,
    ):
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.ckpt_path = ckpt_path
        self.threshold = threshold

    def setup(self, device: str) -> None:
        self.trained: TrainedNetwork = load_trained(self.ckpt_path)

    def decode_request(self, request: DigitRequest) -> Drawing:
        return request.drawing

    def predict(self, drawings: Drawing | list[Drawing]) -> list[dict[str, Any]]:
        """One drawing, or a batch of them (LitServe's default ``batch`` keeps the list)."""
        batch = drawings if isinstance(drawings, list) else [drawings]
        rows = np.stack([drawing.pixels for drawing in batch])
        too_small = [drawing.too_small for drawing in batch]
        probabilities, readings = self.trained.readings(rows, self.threshold, too_small)
        answers = [
            answer(row, p, r) for row, p, r in zip(rows, probabilities, readings, strict=True)
        ]
        return answers if isinstance(drawings, list) else answers[0]

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


def answer(pixels: np.ndarray, probabilities: np.ndarray, reading: Reading) -> dict[str, Any]:
    """What the server answers for one digit."""
    return {
        "digit": reading.digit,
        "probability": reading.probability,
        "sure": reading.sure,
        "likeliest": list(reading.likeliest),  # the two likeliest digits
        "probabilities": [float(p) for p in probabilities],
        "pixels": pixels.reshape(8, 8).round(3).tolist(),  # the 8x8 image the model saw
    }


class ConstantAPI(DigitsAPI):
    """The same HTTP stack answering a constant: the floor the load benchmark compares with."""

    ANSWER = answer(
        np.zeros(64, dtype=np.float32), np.full(10, 0.1), Reading(0, 0.1, False, (0, 1))
    )

    def setup(self, device: str) -> None:
        pass  # no model

    def predict(self, drawings: Drawing | list[Drawing]) -> list[dict[str, Any]]:
        return [self.ANSWER] * len(drawings) if isinstance(drawings, list) else self.ANSWER
