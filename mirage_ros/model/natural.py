"""Natural images shipped inside installed PyPI packages, for encoder-decoder reconstruction.

The simulator's textures are our own; these photographs (scikit-image's and matplotlib's sample
data) keep the encoder general. A fixed list of names is held out and never trained on.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput

#: Package names accepted in ``image_dirs`` in place of a path, and their data folder.
PACKAGE_DATA_DIRS = {"skimage": ("skimage", "data"),
                     "matplotlib": ("matplotlib", "mpl-data/sample_data")}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def resolve_image_dirs(image_dirs: list[str]) -> list[Path]:
    """Folders to read: package names (``"skimage"``, ``"matplotlib"``) or paths.

    A package that is not installed is skipped (the device machine has neither; its images travel
    as a plain folder instead). Raises ``InvalidInput("natural.image_dirs")`` if nothing is found.
    """
    found = []
    for entry in image_dirs:
        if entry in PACKAGE_DATA_DIRS:
            package, sub = PACKAGE_DATA_DIRS[entry]
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                continue
            path = Path(spec.origin).parent / sub
        else:
            path = Path(entry)
        if path.is_dir():
            found.append(path)
    if not found:
        raise InvalidInput("natural.image_dirs", f"none of {image_dirs} is an existing folder")
    return found


def load_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3) uint8`` from an image file; grey is replicated, alpha composited on white."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_natural_images(image_dirs: list[str], heldout: list[str], min_size: int
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(train, heldout)``: name -> ``(H, W, 3) uint8`` of every image at least ``min_size`` a side.

    Names in ``heldout`` go to the second dict only; the first file of a name wins.
    """
    train: dict[str, np.ndarray] = {}
    held: dict[str, np.ndarray] = {}
    for folder in resolve_image_dirs(image_dirs):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name in train or path.name in held:
                continue
            image = load_rgb(path)
            if min(image.shape[:2]) < min_size:
                continue
            (held if path.name in heldout else train)[path.name] = image
    if not train:
        raise InvalidInput("natural.image_dirs", "no training image found")
    return train, held


def random_crops(images: list[np.ndarray], n: int, size: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """``(n, 3, size, size) float32`` in ``[0, 1]``: random crops, flips, 90-degree turns and
    colour-channel permutations of ``images`` (each ``(H, W, 3) uint8``, sides >= ``size``)."""
    out = np.empty((n, 3, size, size), np.float32)
    for k in range(n):
        image = images[rng.integers(len(images))]
        y = rng.integers(image.shape[0] - size + 1)
        x = rng.integers(image.shape[1] - size + 1)
        crop = image[y : y + size, x : x + size]
        crop = np.rot90(crop, rng.integers(4))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = crop[..., rng.permutation(3)]
        out[k] = crop.transpose(2, 0, 1) / 255.0
    return out


def centre_crop(image: np.ndarray, multiple: int, max_side: int) -> np.ndarray:
    """Centre crop of ``(H, W, 3)`` to sides that are multiples of ``multiple``, at most ``max_side``."""
    h = min(image.shape[0], max_side) // multiple * multiple
    w = min(image.shape[1], max_side) // multiple * multiple
    y, x = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return image[y : y + h, x : x + w]


def random_holes(n: int, h: int, w: int, max_fraction: float, rng: np.random.Generator
                 ) -> np.ndarray:
    """``(n, 1, h, w) float32`` validity masks (1 = latent present) with random rectangular holes.

    Each mask gets up to 4 rectangles whose total area stays near ``U(0, max_fraction) * h * w``,
    so the renderer learns to fill gaps of every size (memory holes, disocclusions, frame edges).
    """
    masks = np.ones((n, 1, h, w), np.float32)
    for k in range(n):
        budget = rng.uniform(0.0, max_fraction) * h * w
        for _ in range(rng.integers(1, 5)):
            area = budget / 2
            rh = int(np.clip(np.sqrt(area * rng.uniform(0.3, 3.0)), 1, h))
            rw = int(np.clip(area / max(rh, 1), 1, w))
            y, x = rng.integers(h - rh + 1), rng.integers(w - rw + 1)
            masks[k, 0, y : y + rh, x : x + rw] = 0.0
    return masks
