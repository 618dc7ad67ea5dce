"""MAT network configs: from the official pickles' constructor kwargs, or inferred from tensor shapes.

The kwarg names are those of the official ``networks/mat.py`` (``Generator``) and
``networks/basic_module.py``/``mat.py`` (``Discriminator``) of github.com/fenglinglwb/MAT.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from inpaintbench.errors import WeightsError

__all__ = [
    "discriminator_config_from_pickle", "generator_config_from_pickle", "infer_discriminator_config",
    "infer_generator_config", "infer_kind",
]


def generator_config_from_pickle(kw: dict[str, Any]) -> dict[str, Any]:
    """Our ``Generator`` kwargs from the official ``G._init_kwargs``.

    The official networks ignore ``synthesis_kwargs.channel_base`` etc. (fixed channel table), so only
    the latent sizes, resolution, channels and mapping depth are taken.
    """
    args = kw.get("_init_args") or []
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"]
    merged = {**dict(zip(names, args, strict=False)), **{k: v for k, v in kw.items() if k in names}}
    missing = [n for n in names if n not in merged]
    if missing:
        raise WeightsError(f"pickled generator config lacks {missing}", "is this a MAT checkpoint?")
    mapping = kw.get("mapping_kwargs") or {}
    return {"img_resolution": int(merged["img_resolution"]), "z_dim": int(merged["z_dim"]),
            "w_dim": int(merged["w_dim"]), "c_dim": int(merged["c_dim"]),
            "img_channels": int(merged["img_channels"]),
            "mapping_layers": int(mapping.get("num_layers", 8))}


def discriminator_config_from_pickle(kw: dict[str, Any]) -> dict[str, Any]:
    args = kw.get("_init_args") or []
    names = ["c_dim", "img_resolution", "img_channels"]
    merged = {**dict(zip(names, args, strict=False)), **{k: v for k, v in kw.items() if k in names}}
    if "img_resolution" not in merged:
        raise WeightsError("pickled discriminator config lacks img_resolution", "is this a MAT checkpoint?")
    cfg = {"img_resolution": int(merged["img_resolution"]), "c_dim": int(merged.get("c_dim", 0)),
           "img_channels": int(merged.get("img_channels", 3)),
           "mbstd_group_size": kw.get("mbstd_group_size", 4),
           "mbstd_num_channels": int(kw.get("mbstd_num_channels", 1))}
    if kw.get("cmap_dim") is not None:
        cfg["cmap_dim"] = int(kw["cmap_dim"])
    return cfg


def _shape(sd: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"state dict lacks {key!r}", "is this a MAT checkpoint?")
    return tuple(sd[key].shape)


def infer_kind(sd: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("synthesis.") for k in sd):
        return "generator"
    if any(k.startswith("Dis.") for k in sd):
        return "discriminator"
    raise WeightsError("state dict has neither generator ('synthesis.*') nor discriminator ('Dis.*') keys",
                       "is this a MAT checkpoint?")


def infer_generator_config(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Generator kwargs from tensor shapes alone (``num_heads`` is not visible in shapes: 6 assumed)."""
    blocks = [int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.enc\.EncConv_Block_(\d+)x\1\.", k))]
    if not blocks:
        raise WeightsError("state dict lacks the synthesis encoder", "is this a MAT generator?")
    res = max(blocks)
    enc0 = _shape(sd, f"synthesis.enc.EncConv_Block_{res}x{res}.conv0.weight")
    fc = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
    c_dim = _shape(sd, "mapping.embed.weight")[1] if "mapping.embed.weight" in sd else 0
    fc0 = _shape(sd, "mapping.fc0.weight")
    w_dim = fc0[0]
    z_dim = fc0[1] - (w_dim if c_dim > 0 else 0)
    return {"img_resolution": res, "z_dim": z_dim, "w_dim": w_dim, "c_dim": c_dim,
            "img_channels": (enc0[1] - 1) // 2, "mapping_layers": len(fc),
            "channel_base": enc0[0] * res, "channel_max": _shape(sd, "synthesis.dec.Dec_16x16.conv0.weight")[0],
            "dim": _shape(sd, "synthesis.first_stage.conv_first.conv.weight")[0], "num_heads": 6}


def infer_discriminator_config(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Discriminator kwargs from shapes (``mbstd_group_size`` is not stored: default 4)."""
    n_blocks = len({int(m.group(1)) for k in sd if (m := re.match(r"Dis\.(\d+)\.conv0\.weight", k))})
    res = 2 ** (n_blocks + 2)
    first = _shape(sd, "Dis.0.conv.weight")
    cmax = _shape(sd, "fc0.weight")[0]
    last = _shape(sd, f"Dis.{n_blocks + 2}.weight") if f"Dis.{n_blocks + 2}.weight" in sd else None
    mbstd_channels = (last[1] - cmax) if last is not None else 0
    cfg: dict[str, Any] = {"img_resolution": res, "img_channels": first[1] - 1, "channel_base": first[0] * res,
                           "channel_max": cmax, "mbstd_num_channels": mbstd_channels, "mbstd_group_size": 4}
    if "mapping.embed.weight" in sd:
        cfg["c_dim"] = _shape(sd, "mapping.embed.weight")[1]
        cfg["cmap_dim"] = _shape(sd, "fc1.weight")[0]
    return cfg
