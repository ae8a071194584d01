"""Which volumes read from files are labels (a napari Labels layer) rather than images.

The rule (also in the README, "Opening files"): the voxels are integers, none negative, and

1. the file says it holds labels: the NIfTI intent code 1002 (``NIFTI_INTENT_LABEL``, set by
   atlases and FSL), or the note ``LABELS_NOTE`` that napari-hrsam's writer puts in every labels
   file it writes (NIfTI ``descrip``, NRRD/MetaImage field, DICOM series description); or
2. the file (or DICOM folder) name has ``label``, ``mask`` or ``seg`` in it (any case); or
3. the voxels look like labels: at most ``MAX_LABELS`` distinct values, and of the pairs of
   neighbouring voxels along the last axis where either is non-zero at least ``MIN_EQUAL_PAIRS``
   are equal (measured on about 16 evenly spaced slices, or 1024 rows of a 2-D image). Label
   maps are flat regions (the mricron atlases: 0.56-0.91 of such pairs are equal); images are
   noisy (the mricron T1 brains and the bundled uint8 MR sample: below 0.25).

Everything else, and any float or negative volume (so CT in Hounsfield units), is an image.
"""
from __future__ import annotations

import re

import numpy as np

LABELS_NOTE = "napari-hrsam labels"
LABEL_INTENT = "1002"
MAX_LABELS = 1000
MIN_EQUAL_PAIRS = 0.5
_NAME = re.compile(r"label|mask|seg", re.IGNORECASE)


def is_labels(array: np.ndarray, name: str = "", notes: tuple[str, ...] = (), intent: str = "") -> bool:
    """Whether ``array`` read from a file named ``name`` opens as labels (the module's rule).

    ``notes``: the file's free-text descriptions (e.g. ITK_FileNotes, DICOM series description);
    ``intent``: its NIfTI intent code as text ("" when it has none).
    """
    if not np.issubdtype(array.dtype, np.integer) or array.size == 0 or array.min() < 0:
        return False
    if intent.strip() == LABEL_INTENT or any(note.strip() == LABELS_NOTE for note in notes):
        return True
    if _NAME.search(name):
        return True
    return _looks_like_labels(array)


def _looks_like_labels(array: np.ndarray) -> bool:
    sample = array[:: max(1, array.shape[0] // (16 if array.ndim >= 3 else 1024))]
    left, right = sample[..., :-1], sample[..., 1:]
    either = (left != 0) | (right != 0)
    pairs = int(either.sum())
    if pairs == 0 or int(((left == right) & either).sum()) < MIN_EQUAL_PAIRS * pairs:
        return False
    top = int(sample.max())
    distinct = np.count_nonzero(np.bincount(sample.ravel())) if top < 1 << 20 else len(np.unique(sample))
    return distinct <= MAX_LABELS
