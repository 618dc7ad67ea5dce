"""Width presets of MAT networks ("official" = the released checkpoints, "tiny" = fast CPU tests)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# The official networks use a fixed channel table {512: 64, 256: 128, 128: 256, 64..4: 512}, which is
# exactly min(32768 / res, 512); the train.py channel_base kwargs are ignored by the official classes.
OFFICIAL_WIDTHS = {"channel_base": 32768, "channel_max": 512, "dim": 180, "num_heads": 6}
# Same code paths and depths, ~100x fewer parameters; only for tests.
TINY_WIDTHS = {"channel_base": 2048, "channel_max": 32, "dim": 36, "num_heads": 6}
PRESETS = {"official": OFFICIAL_WIDTHS, "tiny": TINY_WIDTHS}


@dataclass(frozen=True)
class Widths:
    """Channel widths of a MAT network; ``nf(res) = min(channel_base // res, channel_max)``."""

    channel_base: int = 32768
    channel_max: int = 512
    dim: int = 180
    num_heads: int = 6

    def nf(self, res: int) -> int:
        return max(1, min(self.channel_base // res, self.channel_max))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def resolve_widths(config: str | None, **overrides: int | None) -> Widths:
    """Start from the preset ``config`` (default "official") and apply the non-None ``overrides``."""
    name = config or "official"
    if name not in PRESETS:
        raise ValueError(f"unknown MAT config {name!r}; use one of {sorted(PRESETS)}")
    values = dict(PRESETS[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Widths(**values)


def check_resolution(img_resolution: int) -> int:
    r = int(img_resolution)
    if r < 128 or r & (r - 1):
        raise ValueError(f"img_resolution must be a power of two >= 128 (official: 256 or 512), got {r}")
    return r
