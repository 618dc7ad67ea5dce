"""Standardized inpainting masks: protocols, hashed mask sets, imports, bins and previews.

Polarity inside the library: bool arrays, True = hole. Files written by inpaintbench: 255 = hole.
"""

from __future__ import annotations

from inpaintbench.masks.bins import BIN_EDGES, BIN_LABELS, hole_ratio_bin
from inpaintbench.masks.hashing import hole_ratio, mask_sha256, set_digest
from inpaintbench.masks.importing import (
    MaskFileWarning,
    import_mask_folder,
    load_mask_file,
    read_mask_file,
)
from inpaintbench.masks.maskset import (
    FILE_POLARITY,
    MaskSet,
    MaskSetIntegrityError,
    build_mask_set,
)
from inpaintbench.masks.preview import preview_masks
from inpaintbench.masks.protocols import (
    PROTOCOLS,
    Protocol,
    generate_mask,
    get_protocol,
    iter_masks,
    list_protocols,
)
from inpaintbench.masks.standard import (
    DigestMismatchError,
    StandardDefinition,
    cache_root,
    resolve_mask_set,
    standard_definitions,
    standard_names,
)

__all__ = [
    "BIN_EDGES", "BIN_LABELS", "FILE_POLARITY", "PROTOCOLS", "DigestMismatchError", "MaskFileWarning",
    "MaskSet", "MaskSetIntegrityError", "Protocol", "StandardDefinition", "build_mask_set", "cache_root",
    "generate_mask", "get_protocol", "hole_ratio", "hole_ratio_bin", "import_mask_folder", "iter_masks",
    "list_protocols", "load_mask_file", "mask_sha256", "preview_masks", "read_mask_file",
    "resolve_mask_set", "set_digest", "standard_definitions", "standard_names",
]
