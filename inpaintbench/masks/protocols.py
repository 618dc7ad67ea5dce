"""The standard mask protocols: names, versions, parameters and what their hole ratios look like.

A protocol is data (:class:`Protocol`) plus one generator function. ``generate_mask(name, index,
seed)`` is a pure function of ``(name, version, seed, index)``; bump ``version`` whenever a change
alters any generated bit, so old digests can never be silently matched by new masks.

``reference`` holds the hole-ratio statistics measured by running the ORIGINAL generators (1000
masks, seed 0): fenglinglwb/MAT ``datasets/mask_generator_*.py`` and advimman/lama
``bin/gen_mask_dataset.py`` with its ``configs/data_gen`` files. Tests compare our generators against them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inpaintbench.errors import UnknownNameError
from inpaintbench.masks import generators as G
from inpaintbench.masks.rng import mask_rng


@dataclass(frozen=True)
class Protocol:
    """One mask protocol.

    Attributes:
        name: e.g. ``mat-large-256``.
        family: ``mat``, ``lama`` or ``box``.
        version: bumped whenever the generated bits change.
        resolution: masks are ``resolution x resolution``.
        params: keyword arguments of the generator (recorded in every manifest).
        hole_ratio_range: closed interval of hole ratios the generator can produce; masks outside it
            cannot come from this protocol (used to warn on import).
        reference: hole-ratio statistics of the original generator (empty for ``box``).
        source: where the algorithm comes from.
        description: one line for ``masks list``.
    """

    name: str
    family: str
    version: int
    resolution: int
    params: dict[str, Any]
    hole_ratio_range: tuple[float, float]
    reference: dict[str, float] = field(default_factory=dict)
    source: str = ""
    description: str = ""

    def generate(self, index: int, seed: int = 0) -> np.ndarray:
        """Mask ``index`` under ``seed``: bool ``[res, res]``, True = hole."""
        rng = mask_rng(self.name, self.version, seed, index)
        s = self.resolution
        if self.family == "mat":
            return G.mat_random_mask(rng, s, **self.params)
        if self.family == "lama":
            return G.lama_eval_mask(rng, s, **self.params)
        if self.family == "box":
            return G.centered_box(s, **self.params)
        raise AssertionError(f"unknown family {self.family}")

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for manifests."""
        return {
            "name": self.name,
            "family": self.family,
            "version": self.version,
            "resolution": self.resolution,
            "params": self.params,
            "hole_ratio_range": list(self.hole_ratio_range),
            "source": self.source,
        }


def _ref(mean, std, lo, p5, p25, p50, p75, p95, hi) -> dict[str, float]:  # noqa: ANN001
    return {"mean": mean, "std": std, "min": lo, "p5": p5, "p25": p25, "p50": p50, "p75": p75,
            "p95": p95, "max": hi}


_MAT_SRC = "fenglinglwb/MAT@d273d89 datasets/{file} (RandomMask + RandomBrush)"
# (file, max boxes <= s/2, max boxes <= s, max strokes) as passed to randint (exclusive) in MAT's
# ``RandomMask`` of that file
_MAT = {
    "mat-large-512": ("mask_generator_512.py", 5, 3, 9,
                      _ref(.396, .167, .009, .133, .272, .396, .506, .687, .880)),
    "mat-small-512": ("mask_generator_512_small.py", 3, 2, 4,
                      _ref(.222, .142, .001, .036, .117, .196, .303, .494, .751)),
    "mat-large-256": ("mask_generator_256.py", 4, 2, 8,
                      _ref(.405, .180, .001, .090, .270, .419, .542, .680, .853)),
    "mat-small-256": ("mask_generator_256_small.py", 2, 2, 3,
                      _ref(.218, .150, .000, .025, .109, .193, .300, .512, .774)),
}

_LAMA_SRC = "advimman/lama@786f593 configs/data_gen/random_{kind}_{res}.yaml + bin/gen_mask_dataset.py"
# LaMa YAML values: irregular (min_times, max_times, max_width, max_len), boxes (margin, min, max,
# min_times, max_times) from ``configs/data_gen/random_{kind}_{res}.yaml``. max_angle is 4 everywhere.
_LamaRow = tuple[tuple[int, int, int, int], "tuple[int, int, int, int, int] | None", dict]
_LAMA: dict[tuple[str, int], _LamaRow] = {
    ("thin", 256): ((4, 50, 10, 40), None, _ref(.289, .130, .023, .069, .181, .299, .400, .476, .499)),
    ("thin", 512): ((4, 70, 20, 100), None, _ref(.281, .133, .024, .064, .171, .291, .396, .478, .499)),
    ("medium", 256): ((4, 5, 50, 100), (0, 10, 50, 1, 5),
                      _ref(.241, .129, .003, .018, .157, .261, .335, .430, .500)),
    ("medium", 512): ((4, 10, 100, 200), (0, 30, 150, 1, 5),
                      _ref(.268, .138, .005, .038, .151, .277, .388, .469, .499)),
    ("thick", 256): ((1, 5, 100, 200), (10, 30, 150, 1, 3),
                     _ref(.263, .131, .011, .057, .155, .263, .365, .476, .500)),
    ("thick", 512): ((1, 5, 250, 450), (10, 30, 300, 1, 4),
                     _ref(.271, .134, .000, .049, .165, .275, .381, .477, .500)),
}


def _build() -> dict[str, Protocol]:
    out: dict[str, Protocol] = {}
    for name, (file, a, b, c, ref) in _MAT.items():
        kind, res = name.split("-")[1], int(name.split("-")[2])
        out[name] = Protocol(
            name=name, family="mat", version=1, resolution=res,
            params={"max_small_boxes": a, "max_large_boxes": b, "max_strokes": c},
            hole_ratio_range=(0.0, 1.0), reference=ref, source=_MAT_SRC.format(file=file),
            description=f"MAT {kind}-mask protocol at {res}: boxes + free-form strokes, 0 < ratio < 1",
        )
    for (kind, res), (irr, box, ref) in _LAMA.items():
        params: dict[str, Any] = {
            "irregular": {"min_times": irr[0], "max_times": irr[1], "max_width": irr[2],
                          "max_len": irr[3], "max_angle": 4},
            "box": None, "irregular_proba": 1.0, "box_proba": 0.0,
            "variants_n": 5, "max_tamper_area": 0.5,
        }
        if box is not None:
            params["box"] = {"margin": box[0], "bbox_min_size": box[1], "bbox_max_size": box[2],
                             "min_times": box[3], "max_times": box[4]}
            params["box_proba"] = 0.3
        name = f"lama-{kind}-{res}"
        out[name] = Protocol(
            name=name, family="lama", version=1, resolution=res, params=params,
            hole_ratio_range=(0.0, 0.5), reference=ref, source=_LAMA_SRC.format(kind=kind, res=res),
            description=f"LaMa random_{kind}_{res} eval masks: 5 variants, keep one with ratio <= 0.5",
        )
    for res in (256, 512):
        name = f"box-{res}"
        out[name] = Protocol(
            name=name, family="box", version=1, resolution=res, params={"side_fraction": 0.5},
            hole_ratio_range=(0.25, 0.25), source="centred square of side res/2 (seed and index unused)",
            description=f"centred {res // 2}x{res // 2} square, hole ratio 0.25 (same mask for every index)",
        )
    return out


PROTOCOLS: dict[str, Protocol] = _build()


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; :class:`UnknownNameError` listing the known ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownNameError("mask protocol", name, list(PROTOCOLS)) from None


def list_protocols() -> list[str]:
    """All protocol names, sorted."""
    return sorted(PROTOCOLS)


def generate_mask(protocol: str | Protocol, index: int, seed: int = 0) -> np.ndarray:
    """Mask ``index`` of ``protocol`` under ``seed`` in memory: bool ``[res, res]``, True = hole.

    A pure function: the result depends only on (protocol name, version, seed, index).
    """
    proto = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
    return proto.generate(index, seed)


def iter_masks(protocol: str | Protocol, n: int, seed: int = 0, start: int = 0) -> Iterator[np.ndarray]:
    """Masks ``start .. start+n-1`` of ``protocol`` under ``seed``, generated lazily in memory."""
    proto = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
    for i in range(start, start + n):
        yield proto.generate(i, seed)
