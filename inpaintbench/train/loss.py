"""MAT's TwoStageLoss, phase by phase (MAT ``losses/loss.py``; StyleGAN2-ADA loss structure).

Phases of one iteration (the caller runs them in this order and steps the optimizers):

* ``g_main``: generate with training-time truncation and style mixing, ``L_G = mean(softplus(-D(x)) +
  softplus(-D_stg1(x_stg1))) + pcp_ratio * PCP(x, real)``. (L1 to the real image is logged only.)
* ``d_main``: ``mean(softplus(D(fake)) + softplus(D_stg1(fake_stg1))) + mean(softplus(-D(real)) +
  softplus(-D_stg1(real)))`` — the stage-1 branch also sees the real image for reals.
* ``d_reg`` (every ``d_reg_interval`` iterations): R1, ``gamma/2 * ||grad_x D(real)||^2`` summed over
  C, H, W, separately for each branch w.r.t. its own image input, times ``d_reg_interval``
  (lazy regularization).

Every random draw is per sample and seeded from ``(seed, global sample index, phase)`` (z, the
style-mixing z, MAT's two feature-mixing maps, the noise images, the ADA parameters), or per
iteration from ``(seed, iteration, phase)`` (the style-mixing cut-off, one per batch as in the
official code). So results do not depend on how a global batch is split over processes.

The mapping network's ``w_avg`` is updated from the mean over the *global* batch (averaged over
processes) with the official decay 0.995, before truncation, exactly where the official mapping
would update it (on every generation in ``g_main`` and ``d_main``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from inpaintbench.distributed import DistContext
from inpaintbench.train.augment import AdaptiveAugment, draw_params
from inpaintbench.train.config import TrainConfig

# Draw-site tags (phase ids); independent streams per site.
PHASE_G, PHASE_D = 1, 2
_TAG_TORCH = 0x70C4
_TAG_MIX = 0x5713
_TAG_ADA = 0xADA0


def stream_seed(*entropy: int) -> int:
    """A 63-bit seed for a torch.Generator from integer entropy (SeedSequence hashing)."""
    words = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, np.uint32)
    return int(words[0]) << 31 ^ int(words[1])


@dataclass
class Batch:
    """One process's share of a global batch."""

    real: torch.Tensor  # [b, 3, R, R] float in [-1, 1]
    mask: torch.Tensor  # [b, 1, R, R] float, 1 = known, 0 = hole (MAT convention)
    ks: list[int]  # global sample index of each row
    iteration: int


class TwoStageLoss:
    """Losses of the three phases; gradients are left to the caller (backward, sync, step)."""

    def __init__(self, G: nn.Module, D: nn.Module, pcp: nn.Module | None, config: TrainConfig,
                 device: torch.device, ctx: DistContext, augment: AdaptiveAugment | None = None):
        self.G, self.D, self.pcp = G, D, pcp
        self.cfg = config
        self.device = device
        self.ctx = ctx
        self.augment = augment
        self.num_ws = G.num_ws
        self.z_dim = G.z_dim
        if config.precision == "bf16":
            self.autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)
        else:
            self.autocast = contextlib.nullcontext

    # ------------------------------------------------------------------ random draws

    def generators(self, ks: Sequence[int], phase: int) -> list[torch.Generator]:
        gens = []
        for k in ks:
            g = torch.Generator(device=self.device)
            g.manual_seed(stream_seed(_TAG_TORCH, self.cfg.seed, k, phase))
            gens.append(g)
        return gens

    def _z(self, gens: Sequence[torch.Generator]) -> torch.Tensor:
        return torch.cat([torch.randn(1, self.z_dim, generator=g, device=g.device) for g in gens]).to(self.device)

    def mixing_cutoff(self, iteration: int, phase: int) -> int:
        """Style-mixing cut-off for the whole global batch (``num_ws`` = no mixing)."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([_TAG_MIX, self.cfg.seed, iteration,
                                                                          phase])))
        cutoff = int(rng.integers(1, self.num_ws))
        return cutoff if rng.random() < self.cfg.style_mix else self.num_ws

    # ------------------------------------------------------------------ networks

    def _global_mean(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=0)
        if self.ctx.active:
            mean = mean.contiguous()
            dist.all_reduce(mean)
            mean = mean / self.ctx.world_size
        return mean

    def mapping(self, z: torch.Tensor, z_mix: torch.Tensor, cutoff: int, update_w_avg: bool = True) -> torch.Tensor:
        """ws with the official training-time semantics (see the module docstring)."""
        M = self.G.mapping
        psi = self.cfg.truncation
        ws = M(z, None, truncation_psi=1.0, skip_w_avg_update=True)
        if update_w_avg:
            with torch.no_grad():
                M.w_avg.copy_(self._global_mean(ws[:, 0].detach().float()).lerp(M.w_avg, M.w_avg_beta))
        if psi != 1:
            ws = M.w_avg.lerp(ws, psi)
        if cutoff < self.num_ws:
            ws2 = M(z_mix, None, truncation_psi=1.0, skip_w_avg_update=True)
            if psi != 1:
                ws2 = M.w_avg.lerp(ws2, psi)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def run_G(self, batch: Batch, phase: int) -> tuple[torch.Tensor, torch.Tensor]:
        gens = self.generators(batch.ks, phase)
        z, z_mix = self._z(gens), self._z(gens)
        ws = self.mapping(z, z_mix, self.mixing_cutoff(batch.iteration, phase))
        return self.G.synthesis(batch.real, batch.mask, ws, noise_mode="random", return_stg1=True, generator=gens)

    def run_D(self, img: torch.Tensor, mask: torch.Tensor, img_stg1: torch.Tensor, ks: Sequence[int],
              phase: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment is not None and self.augment.p > 0:
            rngs = [np.random.Generator(np.random.PCG64(np.random.SeedSequence([_TAG_ADA, self.cfg.seed, k, phase])))
                    for k in ks]
            params = draw_params(self.augment.p, rngs, img.shape[-1])
            (img, img_stg1), mask = self.augment([img, img_stg1], mask, params)
        return self.D(img, mask, img_stg1)

    # ------------------------------------------------------------------ phases

    def g_main(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self.autocast():
            img, img_stg1 = self.run_G(batch, PHASE_G)
            logits, logits_stg1 = self.run_D(img, batch.mask, img_stg1, batch.ks, PHASE_G * 10)
        logits, logits_stg1, img = logits.float(), logits_stg1.float(), img.float()
        adv = (F.softplus(-logits) + F.softplus(-logits_stg1)).mean()
        loss = adv
        stats = {"G/adv": adv.detach()}
        if self.pcp is not None and self.cfg.pcp_ratio > 0:
            with self.autocast():
                pcp = self.pcp(img, batch.real).float()
            loss = loss + self.cfg.pcp_ratio * pcp
            stats["G/pcp"] = pcp.detach()
        stats["G/l1"] = (img.detach() - batch.real).abs().mean()
        stats["G/total"] = loss.detach()
        return loss, stats

    def d_main(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Returns (loss, stats, sign sum of the real logits for ADA)."""
        with torch.no_grad(), self.autocast():
            img, img_stg1 = self.run_G(batch, PHASE_D)
        with self.autocast():
            lf, lf1 = self.run_D(img.detach(), batch.mask, img_stg1.detach(), batch.ks, PHASE_D * 10)
            lr, lr1 = self.run_D(batch.real, batch.mask, batch.real, batch.ks, PHASE_D * 10 + 1)
        lf, lf1, lr, lr1 = lf.float(), lf1.float(), lr.float(), lr1.float()
        loss_fake = (F.softplus(lf) + F.softplus(lf1)).mean()
        loss_real = (F.softplus(-lr) + F.softplus(-lr1)).mean()
        loss = loss_fake + loss_real
        stats = {"D/fake": loss_fake.detach(), "D/real": loss_real.detach(), "D/total": loss.detach(),
                 "D/logit_real": lr.detach().mean(), "D/logit_fake": lf.detach().mean(),
                 "D/logit_real_stg1": lr1.detach().mean(), "D/logit_fake_stg1": lf1.detach().mean()}
        return loss, stats, lr.detach().sign().sum()

    def d_reg(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Returns (loss, stats, sign sum of the real logits: they count for ADA as in the official code)."""
        real = batch.real.detach().requires_grad_(True)
        real_stg1 = batch.real.detach().requires_grad_(True)
        with self.autocast():
            lr, lr1 = self.run_D(real, batch.mask, real_stg1, batch.ks, PHASE_D * 10 + 2)
        grads = torch.autograd.grad([lr.float().sum(), lr1.float().sum()], [real, real_stg1], create_graph=True)
        pen = grads[0].float().square().sum(dim=[1, 2, 3])
        pen1 = grads[1].float().square().sum(dim=[1, 2, 3])
        loss = ((pen + pen1) * (self.cfg.r1_gamma / 2)).mean() * self.cfg.d_reg_interval
        stats = {"D/r1": pen.detach().mean(), "D/r1_stg1": pen1.detach().mean(), "D/reg": loss.detach()}
        return loss, stats, lr.detach().float().sign().sum()
