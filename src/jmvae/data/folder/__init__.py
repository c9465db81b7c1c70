"""A user's own data: a folder with a spec file, ``jmvae.json``, naming each modality and where its
values are (a NumPy array, CSV columns, image files listed in a CSV column), read as ``PairedData``.

- ``spec``: ``FolderSpec``, ``ModalitySource``, ``SplitSpec``, read from ``jmvae.json``;
- ``tables``: CSV files, read once; ``sources``: each modality's values and its missing rows;
- ``loader``: ``load_folder(path)`` -> ``PairedData`` (split, masks, binarisation, standardisation);
- ``example``: ``write_example(path)``, the README's example folder.

docs/data-folder.md documents the spec and the errors.
"""

from __future__ import annotations

from jmvae.data.folder.example import write_example
from jmvae.data.folder.loader import load_folder
from jmvae.data.folder.spec import SPEC_FILE, FolderSpec, ModalitySource, SplitSpec, is_data_folder, read_spec

__all__ = ["FolderSpec", "ModalitySource", "SPEC_FILE", "SplitSpec", "is_data_folder", "load_folder", "read_spec",
           "write_example"]
