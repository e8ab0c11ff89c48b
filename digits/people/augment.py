"""Augmentation: training digits moved and deformed the way people's handwriting differs.

Two batch transforms (``digits.extras.BatchTransform``), given to the data module by
class path (``data.transforms``): ``Shift`` moves each digit by a pixel or so;
``Handwriting`` deforms it.

Thirteen writers made ``load_digits``; the people at the page write with another slant,
other proportions, another pen, a less steady hand. ``Handwriting`` shows the network
each training digit changed in those ways, a different change for every digit and
every epoch, so that it learns the digit rather than its writer.

The work is kornia's (``kornia.augmentation`` draws each sample's parameters and warps
the whole batch in a few tensor operations, on the training device): the 8x8 digit is
enlarged to the 32x32 bitmap it was counted from, slanted, rotated, stretched and
wobbled, its strokes made thicker or thinner, and counted back into 4x4 blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from digits.dataset import MAX_PIXEL
from digits.extras import BatchTransform

# The deformations at strength 1 (docs/drawn.md, "Augmentation").
ROTATION = 10.0  # degrees either way
SLANT = 15.0  # degrees of shear along x, either way: upright to slanted writing
NARROWEST = 0.75  # width scale, from narrow to a little wide
WIDEST = 1.1
SHORTEST = 0.92  # height scale: the preprocessing fills the height, so only a little
WOBBLE = 0.7  # kornia's elastic alpha: how far a stroke wanders
WOBBLE_SMOOTHNESS = 2.0  # the elastic field's Gaussian sigma, in working pixels
STROKE = 0.6  # how far a stroke may grow or shrink, in working pixels either side
# Each 8x8 digit is deformed at this side: fine enough that rotating it does not smear
# it, coarse enough to cost little (each block becomes 2x2 pixels).
WORKING_SIDE = 16


class Shift(BatchTransform):
    """Moves each digit by up to ``pixels`` in each direction, filling with no ink.

    Args:
        pixels: The largest move, 1 to 3.
    """

    def __init__(self, pixels: int = 1) -> None:
        super().__init__()
        if not 1 <= pixels < 4:
            raise ValueError(f"Shift.pixels must be 1 to 3, got {pixels}")
        self.pixels = pixels

    def forward(self, pixels: torch.Tensor, seed: int) -> torch.Tensor:
        generator = torch.Generator(pixels.device)
        generator.manual_seed(seed)
        return shift_images(pixels, self.pixels, generator)


def shift_images(features: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Move each (N, side*side) image by its own random offset, filling with 0 (no ink)."""
    count, pixels = features.shape
    side = round(pixels**0.5)
    padded = F.pad(features.reshape(count, side, side), (shift, shift, shift, shift))
    offsets = torch.randint(
        0, 2 * shift + 1, (2, count, 1), generator=generator, device=features.device
    )
    grid = torch.arange(side, device=features.device)
    rows = (offsets[0] + grid)[:, :, None]  # (N, side, 1)
    cols = (offsets[1] + grid)[:, None, :]  # (N, 1, side)
    batch = torch.arange(count, device=features.device)[:, None, None]
    return padded[batch, rows, cols].reshape(count, pixels)


class Handwriting(BatchTransform):
    """Deforms a batch of (N, 64) digits in 0..16, each digit its own way.

    Args:
        strength: Scales every deformation: 0 leaves the digits as they are, 1 is the
            ranges above; below 4, where the narrowest digit would have no width.
    """

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        # At 4 the narrowest digit would have no width left.
        if not 0 <= strength < 4:
            raise ValueError(f"Handwriting.strength must be 0 or more and below 4, got {strength}")
        import kornia.augmentation as K  # only where augmentation is used

        self.strength = strength
        narrow, wide = 1 - (1 - NARROWEST) * strength, 1 + (WIDEST - 1) * strength
        short = 1 - (1 - SHORTEST) * strength
        self.geometry = K.AugmentationSequential(
            K.RandomAffine(
                degrees=ROTATION * strength,
                shear=SLANT * strength,
                scale=(narrow, wide, short, 1.0),
                p=1.0,
            ),
            K.RandomElasticTransform(
                kernel_size=(7, 7),
                sigma=(WOBBLE_SMOOTHNESS, WOBBLE_SMOOTHNESS),
                alpha=(WOBBLE * strength, WOBBLE * strength),
                p=1.0,
            ),
        )
        self.register_buffer("pen", torch.ones(3, 3), persistent=False)

    def forward(self, pixels: torch.Tensor, seed: int) -> torch.Tensor:
        """kornia draws from torch's global generator: it is seeded for this batch alone."""
        if self.strength == 0:
            return pixels
        device = pixels.device
        with torch.random.fork_rng(
            [device] if device.type != "cpu" else [], device_type=device.type
        ):
            torch.manual_seed(seed)
            return self._deform(pixels)

    def _deform(self, pixels: torch.Tensor) -> torch.Tensor:
        count, side = len(pixels), round(pixels.shape[1] ** 0.5)
        zoom = WORKING_SIDE // side
        # Each block's ink (0..16) spread over its pixels as a share, 0..1.
        ink = F.interpolate(pixels.reshape(count, 1, side, side) / MAX_PIXEL, scale_factor=zoom)
        ink = self._pen_width(self.geometry(ink))
        blocks = F.avg_pool2d(ink, zoom) * MAX_PIXEL
        return blocks.clamp(0, MAX_PIXEL).reshape(count, side * side)

    def _pen_width(self, bitmap: torch.Tensor) -> torch.Tensor:
        """Thicker strokes for some digits, thinner for others."""
        change = (torch.rand(len(bitmap), 1, 1, 1, device=bitmap.device) * 2 - 1) * STROKE
        change = change * min(self.strength, 1.0)
        from kornia.morphology import dilation, erosion

        thicker, thinner = dilation(bitmap, self.pen), erosion(bitmap, self.pen)
        return (
            bitmap
            + change.clamp(min=0) * (thicker - bitmap)
            + (-change).clamp(min=0) * (thinner - bitmap)
        )
