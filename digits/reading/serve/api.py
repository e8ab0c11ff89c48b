"""The model behind ``POST /predict``, as a LitServe API.

The HTTP server only checks a request's shape (and the 64 numbers of ``"pixels"``, which
are cheap). An ``"image"`` is decoded in ``decode_request``, which LitServe runs in the
inference worker processes: decoding costs several times the network's reading, and
there it never holds up the HTTP server's event loop, which answers every other client
meanwhile. An image the worker cannot read is answered there as its 422 and
``{"error": ...}``, returned, not raised: LitServe decodes a whole batch of requests
together, and an exception there fails every request of the batch
(Lightning-AI/LitServe#340), not only the bad one.
"""

# No `from __future__ import annotations` here: LitServe reads decode_request's parameter
# annotation to build the endpoint, and FastAPI needs the class itself, not its name.
from typing import Any

import litserve as ls
import numpy as np
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from digits.people.preprocess import Drawing, checked_digits, data_url_to_image, read_drawing
from digits.reading.trained import Reading, TrainedNetwork, load_trained


class DigitRequest(BaseModel):
    """``{"pixels": [64 numbers in 0..16]}`` or ``{"image": "data:image/png;base64,..."}``."""

    model_config = ConfigDict(extra="forbid")

    pixels: Any = None
    image: Any = None
    _drawing: Drawing | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def one_digit(self) -> "DigitRequest":
        if (self.pixels is None) == (self.image is None):
            raise ValueError('send either "pixels" (64 numbers in 0..16) or "image" (a data URL)')
        if self.image is not None:
            if not isinstance(self.image, str):
                raise ValueError('"image" must be a string: data:image/png;base64,...')
        else:
            digits = checked_digits(self.pixels)
            if len(digits) != 1:
                raise ValueError(f'"pixels" must hold one digit, got {len(digits)}')
            self._drawing = Drawing(digits[0], extent=1.0)  # pixels say nothing of size
        return self

    @property
    def drawing(self) -> Drawing | None:
        """The 64 pixels sent, checked; None for an image, which the worker decodes."""
        return self._drawing


def image_drawing(image: str) -> Drawing | JSONResponse:
    """The image read as a drawing, or the 422 that says why it cannot be read.

    ``digits.people.preprocess`` refuses an image larger than 4096x4096 from its header, before
    decoding a pixel, and anything that is not an image, as a ``ValueError``.
    """
    try:
        return read_drawing(data_url_to_image(image))
    except ValueError as error:
        return refusal(str(error))


def refusal(message: str) -> JSONResponse:
    """A bad request's answer, as the HTTP server's own: 422 and one line of ``{"error"}``."""
    return JSONResponse({"error": message}, status_code=422)


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
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.ckpt_path = ckpt_path
        self.threshold = threshold

    def setup(self, device: str) -> None:
        self.trained: TrainedNetwork = load_trained(self.ckpt_path)

    def decode_request(self, request: DigitRequest) -> Drawing | JSONResponse:
        """Runs in an inference worker: an image is decoded here, or refused."""
        if request.drawing is not None:
            return request.drawing
        return image_drawing(request.image)

    def predict(self, decoded: Any) -> Any:
        """One decoded request, or a batch of them (LitServe's default ``batch`` keeps the
        list): the drawings are read, the refusals passed on as they are."""
        batch = decoded if isinstance(decoded, list) else [decoded]
        drawings = [item for item in batch if isinstance(item, Drawing)]
        answers = iter(self.answers(drawings) if drawings else [])
        outputs = [next(answers) if isinstance(item, Drawing) else item for item in batch]
        return outputs if isinstance(decoded, list) else outputs[0]

    def answers(self, drawings: list[Drawing]) -> list[dict[str, Any]]:
        """The network's answer for each drawing, in one batch."""
        rows = np.stack([drawing.pixels for drawing in drawings])
        too_small = [drawing.too_small for drawing in drawings]
        probabilities, readings = self.trained.readings(rows, self.threshold, too_small)
        return [answer(row, p, r) for row, p, r in zip(rows, probabilities, readings, strict=True)]

    def encode_response(self, output: dict[str, Any] | JSONResponse) -> JSONResponse:
        """The HTTP response, made here in the worker; FastAPI sends a response as it is."""
        return output if isinstance(output, JSONResponse) else JSONResponse(output)


def answer(pixels: np.ndarray, probabilities: np.ndarray, reading: Reading) -> dict[str, Any]:
    """What the server answers for one digit."""
    return {
        "digit": reading.digit,
        "probability": reading.probability,
        "sure": reading.sure,
        "likeliest": list(reading.likeliest),  # the two likeliest digits
        "unfamiliar": reading.unfamiliar,  # unlike every digit it trained on: never sure
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

    def answers(self, drawings: list[Drawing]) -> list[dict[str, Any]]:
        return [self.ANSWER] * len(drawings)
