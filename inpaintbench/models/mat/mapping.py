"""MAT's mapping network (z -> w) and the random feature-mixing maps of its first stage.

Li et al., "MAT: Mask-Aware Transformer for Large Hole Image Inpainting" (CVPR 2022), official
``networks/mat.py``; parameter names equal the official ones so that official checkpoints load
strictly. The mixing-map helpers draw and check the Bernoulli maps the generator's first stage
mixes features with (:func:`draw_mix_mask`; the discriminator reuses :class:`MappingNet`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from inpaintbench.models.mat.layers import FullyConnectedLayer, MATModule

GeneratorArg = torch.Generator | Sequence[torch.Generator] | None


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def draw_mix_mask(shape: tuple[int, ...], like: torch.Tensor, generator: GeneratorArg,
                  channel_major: bool = False) -> torch.Tensor:
    """A Bernoulli(0.5) {0,1} feature-mixing map of shape [B, ...].

    With ``generator=None`` it is drawn like the official code draws it: dropout (p=0.5, training
    mode, global torch RNG) of ``ones_like(x) * 0.5``, which fills the map in ``x``'s *memory* order.
    The official token map ([B, N, C], mid-transformer) is ``feature2token(conv) + identity`` and so
    has channel-major memory ([B, C, N] transposed); pass ``channel_major=True`` for it, and
    ``torch.manual_seed`` then reproduces the official maps on the same device (tested against an
    emulation of the official layout). With one generator, or one per sample, the map is drawn from
    those in logical order instead (our own seeded streams; no official counterpart).
    """
    if generator is None:
        if channel_major:
            b, n, c = shape
            full = torch.full((b, c, n), 0.5, device=like.device, dtype=like.dtype)
            return F.dropout(full, p=0.5, training=True).transpose(1, 2)
        return F.dropout(torch.full(shape, 0.5, device=like.device, dtype=like.dtype), p=0.5, training=True)
    if isinstance(generator, torch.Generator):
        m = torch.empty(shape, device=generator.device).bernoulli_(0.5, generator=generator)
        return m.to(like.device, like.dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
    parts = [torch.empty((1, *shape[1:]), device=g.device).bernoulli_(0.5, generator=g) for g in generator]
    return torch.cat(parts).to(like.device, like.dtype)


def _check_mix_mask(m: torch.Tensor, shape: tuple[int, ...], site: str, like: torch.Tensor) -> torch.Tensor:
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"mix_masks[{site}] has shape {tuple(m.shape)}, expected {tuple(shape)}")
    return m.to(like.device, like.dtype)


# --------------------------------------------------------------------------------------------------
# mapping


class MappingNet(MATModule):
    """z (+ optional label) -> w, broadcast to ``num_ws`` rows; tracks ``w_avg`` for truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed = w_dim if c_dim > 0 else 0
        features = [z_dim + embed] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def _dtype(self) -> torch.dtype:
        """Dtype the inputs are cast to: that of the weights (float32 as in the official network, float64
        when the whole network is cast to float64, as the parity tests do)."""
        return self.fc0.weight.dtype if self.num_layers > 0 else torch.float32

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, skip_w_avg_update: bool = False) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            if z is None:
                raise ValueError("z is required")
            x = normalize_2nd_moment(z.to(self._dtype()))
        if self.c_dim > 0:
            if c is None or c.shape[-1] != self.c_dim:
                raise ValueError(f"c must have shape [B, {self.c_dim}]")
            y = normalize_2nd_moment(self.embed(c.to(self.embed.weight.dtype)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("truncation needs a tracked w_avg")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x
