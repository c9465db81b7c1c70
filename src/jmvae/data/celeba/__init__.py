"""CelebA (Liu et al. 2015) in its official layout: 64x64 colour faces and 40 binary attributes.

The folder (``layout.find_celeba``) holds what the CelebA site distributes:

- ``img_align_celeba/*.jpg``: the aligned and cropped images, 178x218 RGB JPEGs;
- ``list_attr_celeba.txt``: line 1 the number of images, line 2 the 40 attribute names, then
  one row per image, ``000001.jpg`` and 40 values in {-1, 1} (spaces, any line ending; a
  ``.gz`` of it, or one file named ``list_attr_celeba*.txt[.gz]``, is read too);
- ``list_eval_partition.txt`` (optional): ``000001.jpg 0`` per image, 0 train, 1 validation,
  2 test.

Modules, one job each: ``layout`` (where the files are), ``attributes`` (parsing the two lists),
``faces`` (the face detector), ``decode`` (crop and resize one image), ``cache`` (the uint8
memory-mapped cache), ``split`` (train/test rows) and ``loader`` (``load_celeba``, which puts
them together; the standardisation is ``jmvae.data.transforms``). See docs/celeba.md.
"""

from __future__ import annotations

from jmvae.data.celeba.attributes import ATTRIBUTE_NAMES, Attributes, attribute_vector, read_attributes, read_partition
from jmvae.data.celeba.decode import ALIGNED_CROP, ALIGNED_SIZE, Crop, crop_spec, decode_image
from jmvae.data.celeba.faces import FaceDetector, detect_face
from jmvae.data.celeba.layout import ATTRIBUTE_FILE, IMAGE_FOLDER, PARTITION_FILE, find_celeba, find_list
from jmvae.data.celeba.loader import IMAGE_SIZE, AttributeLikelihood, CelebAWarning, celeba_modalities, load_celeba
from jmvae.data.celeba.split import TEST_FRACTION, Split

__all__ = [
    "ALIGNED_CROP", "ALIGNED_SIZE", "ATTRIBUTE_FILE", "ATTRIBUTE_NAMES", "IMAGE_FOLDER", "IMAGE_SIZE", "PARTITION_FILE",
    "TEST_FRACTION", "AttributeLikelihood", "Attributes", "CelebAWarning", "Crop", "FaceDetector", "Split",
    "attribute_vector", "celeba_modalities", "crop_spec", "decode_image", "detect_face", "find_celeba", "find_list",
    "load_celeba", "read_attributes", "read_partition",
]
