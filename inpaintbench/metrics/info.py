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

#: How a metric is computed: ``pixel`` (on the uint8 pair), ``lpips`` (an LPIPS net per image),
#: ``network`` (another network per image: DISTS) or ``set`` (from the features of the whole run).
FAMILIES = ("pixel", "lpips", "network", "set")
#: Feature spaces of the set metrics: the name of the extractor whose features a set metric reads.
#: ``inception`` is saved as ``features/fake.npy`` / ``real.npy``; the others as
#: ``features/<space>_fake.npy`` / ``<space>_real.npy`` (rows aligned with per_image.parquet).
FEATURE_SPACES = ("inception", "dinov2", "clip")


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
    #: set metrics: the feature space they are computed in (one of :data:`FEATURE_SPACES`)
    features: str | None = None
    #: the weight ids (:mod:`inpaintbench.weights`) whose files the metric needs
    weights: tuple[str, ...] = ()
    #: the values it can take, in words
    value_range: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"metric {self.name}: unknown family {self.family!r}")
        if (self.family == "set") != (self.features is not None) or \
                (self.features is not None and self.features not in FEATURE_SPACES):
            raise ValueError(f"metric {self.name}: set metrics (only) name a feature space")

    @property
    def per_image(self) -> bool:
        return self.family != "set"

    @property
    def scope(self) -> str:
        return "set" if self.family == "set" else "per-image"


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
                   variant="lpips-alex v0.1, input uint8/127.5-1", weights=("torchvision-alexnet",),
                   value_range="[0, ~1]"),
        MetricInfo("lpips_vgg", False, "lpips", "LPIPS-VGG", "VGG16 LPIPS on [-1,1] (LaMa convention)",
                   default=False, variant="lpips-vgg v0.1, input uint8/127.5-1", weights=("torchvision-vgg16",),
                   value_range="[0, ~1]"),
        MetricInfo("fid", False, "set", "FID", "Frechet distance of 2048-d Inception pool features",
                   variant="fid: 2048-d pool features, float64 moments, population covariance",
                   features="inception", value_range="[0, inf)"),
        MetricInfo("fid_inf", False, "set", "FID∞", "FID extrapolated to infinite N (Chong & Forsyth 2020)",
                   default=False, variant="fid-inf: least-squares a + b/N over 15 subset sizes",
                   features="inception", value_range="(-inf, inf), ~[0, inf)"),
        MetricInfo("kid", False, "set", "KID", "polynomial-kernel MMD^2, subsets (torch-fidelity)",
                   variant="kid-poly3: (xᵀy/d+1)³ unbiased MMD², subsets (torch-fidelity/StyleGAN2-ADA)",
                   features="inception", value_range="~[0, inf)"),
        MetricInfo("p_ids", True, "set", "P-IDS", "paired inception discriminative score (CoModGAN/MAT)",
                   variant="p-ids: LinearSVC(dual=False) on [real, fake], paired decision values (CoModGAN/MAT)",
                   features="inception", value_range="[0, 1]"),
        MetricInfo("u_ids", True, "set", "U-IDS", "unpaired inception discriminative score (CoModGAN/MAT)",
                   variant="u-ids: 1 - training accuracy of that SVM (CoModGAN/MAT)",
                   features="inception", value_range="[0, 0.5]"),
        # --- issue 12: opt-in (each needs a network the default run does not load) ---------------
        MetricInfo("lpips_hole", False, "lpips", "LPIPS (hole)",
                   "AlexNet LPIPS spatial map averaged over the hole dilated by 8 px",
                   default=False, weights=("torchvision-alexnet",), value_range="[0, ~1]",
                   variant="lpips-alex v0.1 spatial map (bilinear upsampled per layer, lpips spatial=True), "
                           "mean over hole pixels dilated by 8 px (17×17 square), input uint8/127.5-1"),
        MetricInfo("dists", False, "network", "DISTS",
                   "structure and texture similarity of VGG16 features (Ding et al. 2020)",
                   default=False, weights=("torchvision-vgg16",), value_range="[0, 1]",
                   variant="dists: VGG16 with L2 pooling, alpha/beta of DISTS_pytorch 0.1 (weights.pt), "
                           "input uint8/255, no resize, per image"),
        MetricInfo("fd_dinov2", False, "set", "FD-DINOv2",
                   "Fréchet distance of DINOv2 ViT-L/14 CLS features (Stein et al. 2023)",
                   default=False, features="dinov2", weights=("dinov2-vitl14",), value_range="[0, inf)",
                   variant="fd-dinov2: ViT-L/14 CLS token after the final norm, PIL bicubic resize to 224×224, "
                           "ImageNet mean/std (dgm-eval); float64 moments, population covariance"),
        MetricInfo("cmmd", False, "set", "CMMD",
                   "MMD of CLIP ViT-L/14@336 embeddings, Gaussian RBF σ=10, ×1000 (Jayasumana et al. 2024)",
                   default=False, features="clip", weights=("clip-vitl14-336",), value_range="[0, ~2000]",
                   variant="cmmd: L2-normalised CLIP ViT-L/14@336 image embeddings (centre crop, PIL bicubic to "
                           "336, CLIP mean/std), biased (V-statistic) MMD², σ=10, scale 1000 (google-research/cmmd)"),
    ]
}

#: Naeem et al. 2020 ("Reliable Fidelity and Diversity Metrics for Generative Models", ICML), k = 5,
#: in the Inception space (plain names) and the DINOv2 space (``_dinov2``; Stein et al. 2023 use them there).
_PRDC_TEXT = {
    "precision": ("Precision", "share of fakes inside the real k-NN manifold (fidelity)", "[0, 1]"),
    "recall": ("Recall", "share of reals inside the fake k-NN manifold (diversity)", "[0, 1]"),
    "density": ("Density", "mean count of real k-NN balls holding each fake, / k (fidelity)", "[0, N/k]"),
    "coverage": ("Coverage", "share of reals whose k-NN ball holds a fake (diversity)", "[0, 1]"),
}
for _space, _suffix, _label in (("inception", "", ""), ("dinov2", "_dinov2", " (DINOv2)")):
    for _name, (_lab, _desc, _rng) in _PRDC_TEXT.items():
        METRICS[_name + _suffix] = MetricInfo(
            _name + _suffix, True, "set", _lab + _label, _desc + f", {_space} features, k = 5",
            default=False, features=_space, weights=("dinov2-vitl14",) if _space == "dinov2" else (),
            value_range=_rng,
            variant=f"prdc-k5: Naeem et al. 2020 (clovaai prdc), Euclidean k-NN radii with k = 5, float64 [{_space}]")

KNOWN_METRICS: tuple[str, ...] = tuple(METRICS)
DEFAULT_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.default)
PIXEL_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "pixel")
LPIPS_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "lpips")
SET_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "set")
PER_IMAGE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.per_image)
NETWORK_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.family == "network")
#: The metrics that need a network (and so weight files).
DEEP_METRICS: tuple[str, ...] = LPIPS_METRICS + NETWORK_METRICS + SET_METRICS


def feature_space(name: str) -> str | None:
    """The feature space a set metric reads (None for per-image metrics and unknown names)."""
    info = METRICS.get(name)
    return info.features if info else None


def feature_files(space: str) -> tuple[str, str]:
    """File stems under ``features/`` of a run directory: (fake, real) for one feature space."""
    if space not in FEATURE_SPACES:
        raise UnknownNameError("feature space", space, list(FEATURE_SPACES))
    return ("fake", "real") if space == "inception" else (f"{space}_fake", f"{space}_real")


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
