"""What each metric column means: direction, scope and display name.

One table shared by the runner, the summaries and the analysis, so that "is higher better?" is
answered in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    per_image: bool
    label: str
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("psnr", True, True, "PSNR", "dB on uint8 RGB, whole image (MAT convention)"),
        MetricInfo("ssim", True, True, "SSIM", "11x11 Gaussian sigma 1.5, valid windows, RGB mean (MAT)"),
        MetricInfo("ssim_lama", True, True, "SSIM (LaMa)", "LaMa's SSIM: [0,1], zero-padded borders, no crop"),
        MetricInfo("l1", False, True, "L1", "mean absolute error on [0,1], whole image"),
        MetricInfo("psnr_hole", True, True, "PSNR (hole)", "PSNR over hole pixels only"),
        MetricInfo("l1_hole", False, True, "L1 (hole)", "mean absolute error on [0,1] over hole pixels only"),
        MetricInfo("lpips", False, True, "LPIPS", "AlexNet LPIPS on [-1,1] (MAT convention)"),
        MetricInfo("lpips_vgg", False, True, "LPIPS-VGG", "VGG16 LPIPS on [-1,1] (LaMa convention)"),
        MetricInfo("fid", False, False, "FID", "Frechet distance of 2048-d Inception pool features"),
        MetricInfo("fid_inf", False, False, "FID∞", "FID extrapolated to infinite N (Chong & Forsyth 2020)"),
        MetricInfo("kid", False, False, "KID", "polynomial-kernel MMD^2, subsets (torch-fidelity)"),
        MetricInfo("p_ids", True, False, "P-IDS", "paired inception discriminative score (CoModGAN/MAT)"),
        MetricInfo("u_ids", True, False, "U-IDS", "unpaired inception discriminative score (CoModGAN/MAT)"),
    ]
}


def is_higher_better(name: str) -> bool:
    """Direction of a metric; unknown metrics are assumed lower-is-better errors."""
    info = METRICS.get(name)
    return bool(info and info.higher_is_better)


def arrow(name: str) -> str:
    return "↑" if is_higher_better(name) else "↓"
