"""Adaptive discriminator augmentation (ADA) for the two-branch MAT discriminator.

Karras et al., "Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020): every
image shown to D (real and fake alike) goes through a chain of differentiable transforms, each
applied with probability ``p``; ``p`` is adjusted so that the overfitting heuristic
``r_t = E[sign(D(real))]`` stays near a target (0.6). Written from the paper's description
(Appendix B and C); the official MAT code builds such a pipe but never calls it.

Transforms here (a subset of the paper's ``bgc`` pipeline, chosen to be exact and cheap):

* x-flip (probability ``p``, then a fair coin), integer translation up to 1/8 of the size with
  reflection at the borders (``p``): geometric, applied identically to the image, the stage-1 image
  and the mask (so D still sees where the hole is);
* brightness (add N(0, 0.2)), contrast (scale by lognormal(0, 0.5 ln 2)), luma flip, hue rotation
  (uniform angle) and saturation (lognormal(0, ln 2)), each with probability ``p``, composed into one
  4x4 colour matrix per sample acting on RGB in [-1, 1] around 0 (mid grey); images only.

Each sample's parameters come from its own seeded stream (``seeds``), so a sample is augmented the
same way whether it sits in a batch of 8 or is one of 4 on each of 2 processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)


def _rotation_about_luma(theta: float) -> np.ndarray:
    """4x4 rotation by ``theta`` about the luma axis (1,1,1)/sqrt(3) (Rodrigues' formula)."""
    v = _LUMA[:3]
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    r = np.eye(3) + math.sin(theta) * k + (1 - math.cos(theta)) * (k @ k)
    out = np.eye(4)
    out[:3, :3] = r
    return out


class AugmentParams:
    """Per-sample transform parameters drawn for one batch."""

    def __init__(self, flip: np.ndarray, tx: np.ndarray, ty: np.ndarray, color: np.ndarray):
        self.flip, self.tx, self.ty, self.color = flip, tx, ty, color

    @property
    def identity(self) -> bool:
        return (not self.flip.any() and not self.tx.any() and not self.ty.any()
                and np.allclose(self.color, np.eye(4)[None]))


def draw_params(p: float, rngs: Sequence[np.random.Generator], size: int, xint_max: float = 0.125,
                brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1.0,
                saturation_std: float = 1.0) -> AugmentParams:
    """Draw every sample's parameters; each transform is enabled with probability ``p``.

    All draws are made whether or not a transform is enabled, so the stream position never depends
    on ``p`` (changing ``p`` changes which transforms apply, not the values they would use).
    """
    n = len(rngs)
    flip = np.zeros(n, bool)
    tx = np.zeros(n, np.int64)
    ty = np.zeros(n, np.int64)
    color = np.repeat(np.eye(4)[None], n, axis=0)
    for i, rng in enumerate(rngs):
        u = rng.random(8)
        coin = rng.random() < 0.5
        t = (rng.random(2) * 2 - 1) * xint_max
        b = rng.normal(0, brightness_std)
        c = math.exp(rng.normal(0, contrast_std * math.log(2)))
        theta = rng.uniform(-math.pi * hue_max, math.pi * hue_max)
        s = math.exp(rng.normal(0, saturation_std * math.log(2)))
        flip[i] = u[0] < p and coin
        if u[1] < p:
            tx[i], ty[i] = int(round(t[0] * size)), int(round(t[1] * size))
        m = np.eye(4)
        if u[2] < p:  # brightness: translate along (1,1,1)
            tr = np.eye(4)
            tr[:3, 3] = b
            m = tr @ m
        if u[3] < p:  # contrast
            m = np.diag([c, c, c, 1.0]) @ m
        vv = np.outer(_LUMA, _LUMA)
        if u[4] < p:  # luma flip: Householder reflection of the luma component
            m = (np.eye(4) - 2 * vv) @ m
        if u[5] < p:  # hue rotation
            m = _rotation_about_luma(theta) @ m
        if u[6] < p:  # saturation: scale the chroma components
            m = (vv + (np.eye(4) - vv) * s) @ m
        color[i] = m
    return AugmentParams(flip, tx, ty, color)


def _reflect(idx: torch.Tensor, n: int) -> torch.Tensor:
    """Reflect indices into [0, n) without repeating the edge (numpy ``mode='reflect'``)."""
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def apply_geometry(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Flip and translate [B, C, H, W] per sample (differentiable in ``x``)."""
    b, _, h, w = x.shape
    dev = x.device
    xs = torch.arange(w, device=dev)[None, :].expand(b, w)
    ys = torch.arange(h, device=dev)[None, :].expand(b, h)
    flip = torch.as_tensor(params.flip, device=dev)[:, None]
    # out = translate(flip(x)): output pixel x reads flip(x)[reflect(x - tx)]
    xs = _reflect(xs - torch.as_tensor(params.tx, device=dev)[:, None], w)
    xs = torch.where(flip, w - 1 - xs, xs)
    ys = _reflect(ys - torch.as_tensor(params.ty, device=dev)[:, None], h)
    bi = torch.arange(b, device=dev)[:, None, None]
    out = x.permute(0, 2, 3, 1)[bi, ys[:, :, None], xs[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2)


def apply_color(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply each sample's 4x4 colour matrix to RGB [B, 3, H, W] (homogeneous coordinates)."""
    m = torch.as_tensor(params.color, device=x.device, dtype=x.dtype)
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    out = m[:, :3, :3] @ flat + m[:, :3, 3:]
    return out.reshape(b, c, h, w)


class AdaptiveAugment:
    """ADA state: the probability ``p`` and the sign statistics that steer it.

    ``update`` follows the official loop (fenglinglwb/MAT ``training/training_loop.py``, from
    StyleGAN2-ADA): every ``interval`` iterations, ``r_t = mean(sign(D(real)))`` over every real
    logit of the main branch since the last adjustment (the Dmain *and* the R1 phases report them),
    and ``p`` moves by ``sign(r_t - target) * batch * interval / (ada_kimg * 1000)``, clamped below at
    0 only (``p >= 1`` applies every transform). ``sign_sum`` may be a device tensor between
    adjustments, so accumulating costs no host sync.
    """

    def __init__(self, target: float = 0.6, ada_kimg: float = 500, interval: int = 4, p: float = 0.0):
        self.target, self.ada_kimg, self.interval = target, ada_kimg, interval
        self.p = float(p)
        self.sign_sum: float | torch.Tensor = 0.0
        self.count = 0
        self.last_rt: float | None = None

    def __call__(self, images: Sequence[torch.Tensor], masks: torch.Tensor, params: AugmentParams
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        if params.identity:
            return list(images), masks
        out = [apply_color(apply_geometry(x, params), params) for x in images]
        return out, apply_geometry(masks, params)

    def accumulate(self, sign_sum: float | torch.Tensor, count: int) -> None:
        self.sign_sum = self.sign_sum + (sign_sum if isinstance(sign_sum, torch.Tensor) else float(sign_sum))
        self.count += int(count)

    def update(self, batch: int) -> None:
        """Adjust ``p`` from the accumulated statistics (already summed over processes)."""
        if self.count == 0:
            return
        rt = float(self.sign_sum) / self.count
        step = np.sign(rt - self.target) * batch * self.interval / (self.ada_kimg * 1000)
        self.p = float(max(self.p + step, 0.0))
        self.last_rt = rt
        self.sign_sum, self.count = 0.0, 0

    def state_dict(self) -> dict[str, float | int | None]:
        return {"p": self.p, "sign_sum": float(self.sign_sum), "count": self.count, "last_rt": self.last_rt}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.p = float(state.get("p") or 0.0)
        self.sign_sum = float(state.get("sign_sum") or 0.0)
        self.count = int(state.get("count") or 0)
        lr = state.get("last_rt")
        self.last_rt = None if lr is None else float(lr)
