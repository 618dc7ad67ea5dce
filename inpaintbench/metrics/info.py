"""The metric registry: every metric's name, direction, scope, default selection and exact variant.

One table, read by the metric suite (what to compute), the runner and CLI (what is selected by
default, early validation of ``--metrics``), the summaries and the analysis (direction, labels).
Like timm's and pyiqa's registries, an entry carries its metadata; nothing else keeps a list of
metric names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inpaintbench.errors import UnknownNameError

#: How a metric is computed: ``pixel`` (on the uint8 pair), ``lpips`` (a network per image) or
#: ``set`` (from the Inception features of the whole run).
FAMILIES = ("pixel", "lpips", "set")


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    family: str
    label: str
    description: str
    #: part of the default selection (``inpaintbench run`` without ``--metrics``)
    default: bool = True
    #: the exact variant, recorded in the manifest (a name and convention reviewers can check)
    variant: str = ""

    @property
    def per_image(self) -> bool:
        return self.family != "set"


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("psnr", True, "pixel", "PSNR", "dB on uint8 RGB, whole image (MAT convention)",
                   variant="psnr-rgb-u8: 20·log10(255/√MSE) per image on uint8 RGB (MAT), capped at 100 dB"),
        MetricInfo("ssim", True, "pixel", "SSIM", "11x11 Gaussian sigma 1.5, valid windows, RGB mean (MAT)",
                   variant="ssim-rgb-g11: 11×11 Gaussian σ=1.5, valid windows, RGB mean, 0..255 (MAT)"),
        MetricInfo("ssim_lama", True, "pixel", "SSIM (LaMa)", "LaMa's SSIM: [0,1], zero-padded borders, no crop",
                   default=False,
                   variant="ssim-rgb-g11-zeropad: 11×11 Gaussian σ=1.5, zero padding 5, no crop, [0,1] (LaMa)"),
        MetricInfo("l1", False, "pixel", "L1", "mean absolute error on [0,1], whole image",
                   variant="l1-rgb: mean |a-b| on [0,1], whole image (MAT)"),
        MetricInfo("psnr_hole", True, "pixel", "PSNR (hole)", "PSNR over hole pixels only",
                   variant="psnr over hole pixels only, capped at 100 dB"),
        MetricInfo("l1_hole", False, "pixel", "L1 (hole)", "mean absolute error on [0,1] over hole pixels only",
                   variant="l1 over hole pixels only"),
        MetricInfo("lpips", False, "lpips", "LPIPS", "AlexNet LPIPS on [-1,1] (MAT convention)",
                   variant="lpips-alex v0.1, input uint8/127.5-1"),
        MetricInfo("lpips_vgg", False, "lpips", "LPIPS-VGG", "VGG16 LPIPS on [-1,1] (LaMa convention)",
                   default=False, variant="lpips-vgg v0.1, input uint8/127.5-1"),
        MetricInfo("fid", False, "set", "FID", "Frechet distance of 2048-d Inception pool features",
                   variant="fid: 2048-d pool features, float64 moments, population covariance"),
        MetricInfo("fid_inf", False, "set", "FID∞", "FID extrapolated to infinite N (Chong & Forsyth 2020)",
                   default=False, variant="fid-inf: least-squares a + b/N over 15 subset sizes"),
        MetricInfo("kid", False, "set", "KID", "polynomial-kernel MMD^2, subsets (torch-fidelity)",
                   variant="kid-poly3: (xᵀy/d+1)³ unbiased MMD², subsets (torch-fidelity/StyleGAN2-ADA)"),
        MetricInfo("p_ids", True, "set", "P-IDS", "paired inception discriminative score (CoModGAN/MAT)",
                   variant="p-ids: LinearSVC(dual=False) on [real, fake], paired decision values (CoModGAN/MAT)"),
        MetricInfo("u_ids", True, "set", "U-IDS", "unpaired inception discriminative score (CoModGAN/MAT)",
                   variant="u-ids: 1 - training accuracy of that SVM (CoModGAN/MAT)"),
    ]
}

KNOWN_METRICS: tuple[str, ...] = tuple(METRICS)
DEFAULT_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.default)
PIXEL_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "pixel")
LPIPS_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "lpips")
SET_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "set")
PER_IMAGE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.per_image)
#: The metrics that need a network (and so weight files).
DEEP_METRICS: tuple[str, ...] = LPIPS_METRICS + SET_METRICS


def check_metric_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names, deduplicated in order; an unknown one is an error listing the known ones, raised
    before anything expensive (mask sets, models) is built."""
    out = tuple(dict.fromkeys(str(n) for n in names))
    for name in out:
        if name not in METRICS:
            raise UnknownNameError("metric", name, list(KNOWN_METRICS))
    return out


def select_lpips_net(names: Iterable[str], lpips_net: str) -> tuple[str, ...]:
    """``--lpips-net vgg`` selects the ``lpips_vgg`` column instead of ``lpips``.

    The ``lpips`` column is always AlexNet (its label says so); VGG values live only in
    ``lpips_vgg``, so two runs with different trunks can never share a column.
    """
    if lpips_net not in ("alex", "vgg"):
        raise UnknownNameError("LPIPS network", lpips_net, ["alex", "vgg"])
    names = tuple(names)
    if lpips_net == "vgg":
        names = tuple(dict.fromkeys("lpips_vgg" if n == "lpips" else n for n in names))
    return names


def is_higher_better(name: str) -> bool:
    """Direction of a metric; unknown metrics are assumed lower-is-better errors."""
    info = METRICS.get(name)
    return bool(info and info.higher_is_better)


def arrow(name: str) -> str:
    return "↑" if is_higher_better(name) else "↓"
