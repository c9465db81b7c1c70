"""The authors' face detector: OpenCV's frontal-face Haar cascade, its box enlarged 1.3x.

A detected box (x, y, w, h) becomes (x - g, y - g, x + w + g, y + h + g) with g = floor(w * 0.15);
it is kept if it lies inside the image and its side exceeds 0.4 of the image height, and the
widest kept box wins. Why: ``crop="detect"`` reproduces the authors' ``convert_celeba.py``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jmvae.errors import JMVAEError

DETECTOR_EXPANSION = 1.3  # the authors' enlargement of the detected face box
DETECTOR_MIN_FRACTION = 0.4  # and their smallest face: box side / image height

Box = tuple[int, int, int, int]


class FaceDetector:
    """OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_alt.xml``, the authors'
    choice), loaded when the detector is made; whoever makes one keeps it for all its images.
    Without OpenCV 4 making one raises ``JMVAEError`` saying what to install."""

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError:
            raise JMVAEError(
                "crop='detect' needs OpenCV 4 with its Haar cascades: pip install 'opencv-python-headless<5' "
                "(or jmvae[face]); the default crop='aligned' needs nothing"
            ) from None
        if not hasattr(cv2, "CascadeClassifier"):
            raise JMVAEError(
                f"crop='detect' needs OpenCV's Haar cascades, which OpenCV {cv2.__version__} no longer has; "
                "pip install 'opencv-python-headless<5'"
            )
        cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt.xml"))
        if cascade.empty():
            raise JMVAEError("OpenCV's haarcascade_frontalface_alt.xml could not be loaded")
        self.cv2: Any = cv2
        self.cascade: Any = cascade

    def box(self, rgb: np.ndarray) -> Box | None:
        """The face box (left, top, right, bottom) in an RGB uint8 (H, W, 3) image, or None."""
        cv2 = self.cv2
        height, width = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.2, minNeighbors=2, minSize=(10, 10))
        best = None
        for x, y, w, h in np.asarray(found).reshape(-1, 4).tolist():
            grow = int(w * (DETECTOR_EXPANSION - 1) / 2)
            box = (x - grow, y - grow, x + w + grow, y + h + grow)
            inside = box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height
            if inside and (box[3] - box[1]) / height > DETECTOR_MIN_FRACTION and (best is None or box[2] - box[0] > best[2] - best[0]):
                best = box
        return best


def detect_face(rgb: np.ndarray, detector: FaceDetector | None = None) -> Box | None:
    """``detector.box(rgb)``: the authors' face box, or None. Without a ``detector`` one is made
    for this image; callers with many images make one ``FaceDetector`` and pass it."""
    return (detector if detector is not None else FaceDetector()).box(rgb)
