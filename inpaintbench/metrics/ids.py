"""P-IDS and U-IDS (Zhao et al., CoModGAN, ICLR 2021), exactly as MAT computes them.

MAT ``evaluatoin/cal_fid_pids_uids.py``: a linear SVM
``sklearn.svm.LinearSVC(dual=False)`` (liblinear primal solver: L2 penalty, squared hinge, C = 1,
intercept via an appended constant feature 1 that is *regularised* like any weight, tol 1e-4) is
fitted on ``[real; fake]`` features with labels real = 1, fake = 0, no scaling, no split; then

* **U-IDS** = 1 − accuracy of that SVM on the very data it was fitted on;
* **P-IDS** = share of index-aligned pairs i where ``f(fake_i) > f(real_i)`` (f = decision value).

Backends:

* ``"sklearn"``: that LinearSVC, the reference.
* ``"torch"``: our solver for the *same* strictly convex problem
  ``min_w ½‖w‖² + C Σ max(0, 1 − yᵢ wᵀx̃ᵢ)²`` (x̃ = [x, 1], y = ±1), whose optimum is unique, so
  both backends approximate the same w (liblinear stops at a relative gradient of ~5e-5, we go to
  1e-7; decision values near 0 may flip, hence an agreement tolerance on the scores, not equality).
  Method: the finite Newton method for L2-loss SVMs (Mangasarian 2002; Keerthi & DeCoste 2005,
  "A modified finite Newton method for fast solution of large scale linear SVMs"): at w the
  generalised Hessian is ``I + 2C X_Iᵀ X_I`` over the active set I = {i : yᵢ wᵀx̃ᵢ < 1}, and the
  step is followed by an exact line search (the objective is a piecewise quadratic in the step:
  sort the breakpoints). With 2N > D we keep ``X_Iᵀ X_I`` (float32) explicitly, update it with
  the rows that enter or leave I, and solve the Newton system by conjugate gradients
  preconditioned with its float32 Cholesky factor (exact float64 Hessian-vector products, so the
  float32 factor only affects speed); with 2N ≤ D the step is solved exactly through the 2N×2N
  Gram matrix. Gradient, line search and decision values are float64; CPU or GPU. 3–11 Newton
  steps in our trials (liblinear's trust-region Newton needed 8–750 outer iterations).

Both scores are meaningless when 2N ≲ d (the classes are then linearly separable whatever the
quality, U-IDS = P-IDS = 0): MAT uses 36,500 (Places) or 2,993 (CelebA-HQ) images.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import torch

from inpaintbench.errors import InputError

__all__ = ["inception_discriminative_scores", "fit_l2svm_newton", "ids_from_decisions"]

C_DEFAULT = 1.0


# ----------------------------------------------------------------------------------------------
# inputs and scores
# ----------------------------------------------------------------------------------------------
def _features(x: Any, name: str) -> np.ndarray | torch.Tensor:
    if isinstance(x, torch.Tensor):
        arr = x.detach()
        if arr.dim() != 2:
            raise InputError(f"{name}: expected features of shape [N, D], got {list(arr.shape)}",
                             "pass one feature row per image")
        if not bool(torch.isfinite(arr).all()):
            raise InputError(f"{name}: features contain NaN or inf", "check the images and the extractor")
        return arr
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected features of shape [N, D], got {arr.shape}",
                         "pass one feature row per image")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: features contain NaN or inf", "check the images and the extractor")
    return arr


def ids_from_decisions(dec_real: np.ndarray, dec_fake: np.ndarray) -> tuple[float, float]:
    """(P-IDS, U-IDS) from decision values of aligned pairs (positive = predicted real).

    As sklearn's ``predict``: a sample is called real iff its decision value is > 0.
    """
    dec_real = np.asarray(dec_real, dtype=np.float64)
    dec_fake = np.asarray(dec_fake, dtype=np.float64)
    correct = np.count_nonzero(dec_real > 0) + np.count_nonzero(dec_fake <= 0)
    u_ids = 1.0 - correct / (dec_real.size + dec_fake.size)
    p_ids = float(np.mean(dec_fake > dec_real))
    return p_ids, float(u_ids)


# ----------------------------------------------------------------------------------------------
# our solver
# ----------------------------------------------------------------------------------------------
def _gram(a: torch.Tensor) -> torch.Tensor:
    """aᵀa; on the CPU through NumPy's BLAS (a symmetric rank-k update, and OpenBLAS is faster than
    the MKL build of torch on AMD CPUs), elsewhere with torch."""
    if a.device.type == "cpu":
        n = a.numpy()
        return torch.from_numpy(n.T @ n)
    return a.T @ a


def _exact_line_search(a: torch.Tensor, b: torch.Tensor, wp: float, pp: float, c: float) -> float:
    """argmin_t≥0 of φ(t) = ½‖w + tp‖² + C Σ max(0, aᵢ − t bᵢ)² with aᵢ = 1 − yᵢoᵢ, bᵢ = yᵢ(Xp)ᵢ.

    φ'(t) = wᵀp + t pᵀp − 2C Σ_{aᵢ − t bᵢ > 0} bᵢ(aᵢ − t bᵢ) is piecewise linear and increasing;
    walk its breakpoints tᵢ = aᵢ/bᵢ > 0 in order (cumulative sums) to the segment where it
    crosses 0 and solve the linear piece there. Two length-n vectors: done in NumPy on the CPU
    (torch's threaded small ops took ~30 ms instead of 0.4 ms on a loaded 2-core machine).
    """
    a = a.detach().cpu().numpy()
    b = b.detach().cpu().numpy()
    active0 = (a > 0) | ((a == 0) & (b < 0))
    alpha = wp - 2 * c * float(np.dot(a[active0], b[active0]))
    beta = pp + 2 * c * float(np.dot(b[active0], b[active0]))
    if alpha >= 0:  # not a descent direction (cannot happen for a Newton step): stay put
        return 0.0
    nz = b != 0
    tb = np.full_like(a, -1.0)
    np.divide(a, b, out=tb, where=nz)
    idx = np.flatnonzero(nz & (tb > 0))
    if idx.size == 0:
        return -alpha / beta
    order = np.argsort(tb[idx], kind="stable")
    idx = idx[order]
    tk, ai, bi = tb[idx], a[idx], b[idx]
    # crossing tᵢ: bᵢ > 0 leaves the active set, bᵢ < 0 enters it
    sgn = np.where(bi > 0, -1.0, 1.0)
    al = alpha + np.concatenate([[0.0], np.cumsum(-2 * c * sgn * ai * bi)])
    be = beta + np.concatenate([[0.0], np.cumsum(2 * c * sgn * bi * bi)])
    at_break = al[:-1] + be[:-1] * tk  # φ' just before each breakpoint
    hit = np.flatnonzero(at_break >= 0)
    k = int(hit[0]) if hit.size else int(tk.size)
    return float(-al[k] / be[k])


def fit_l2svm_newton(x: torch.Tensor, y: torch.Tensor, c: float = C_DEFAULT, tol: float = 1e-7,
                     max_iter: int = 100) -> tuple[torch.Tensor, int]:
    """Minimise ½‖w‖² + C Σ max(0, 1 − yᵢ wᵀxᵢ)² (no separate bias: append a constant column).

    ``x``: float64 [n, d] (device of your choice), ``y``: ±1 float64 [n]. Returns (w, Newton steps).
    Stops when ‖∇f(w)‖ ≤ tol·‖∇f(0)‖ (liblinear stops at ~5e-5 for balanced classes).
    """
    n, d = x.shape
    newton = _SampleSpaceNewton(x, c) if n <= d else _FeatureSpaceNewton(x, c)
    w = torch.zeros(d, dtype=x.dtype, device=x.device)
    o = torch.zeros(n, dtype=x.dtype, device=x.device)
    g0 = gnorm = None
    it = 0
    for it in range(max_iter + 1):  # noqa: B007 - `it` is reported
        margin = 1.0 - y * o
        act = margin > 0
        m = act.to(x.dtype)
        grad = w + 2 * c * (x.T @ (m * (o - y)))
        gnorm = float(torch.linalg.vector_norm(grad))
        if g0 is None:
            g0 = max(gnorm, 1e-300)
        if gnorm <= tol * g0 or it == max_iter:
            break
        p = newton.direction(act, m, grad, rtol=1e-3 * min(1.0, (gnorm / g0) ** 0.5))
        xp = x @ p
        step = _exact_line_search(margin, y * xp, float(w @ p), float(p @ p), c)
        w = w + step * p
        o = o + step * xp
    if gnorm is not None and gnorm > tol * g0:
        warnings.warn(f"IDS SVM (torch) did not reach tol={tol} in {max_iter} Newton steps "
                      f"(relative gradient {gnorm / g0:.2e})", stacklevel=2)
    return w, it


class _SampleSpaceNewton:
    """n <= d: exact Newton steps through the n×n Gram matrix K = XXᵀ (push-through identity):
    (I + 2C X_IᵀX_I)⁻¹ v = v − X_Iᵀ (I/(2C) + K_II)⁻¹ X_I v; one |I|×|I| Cholesky per step."""

    def __init__(self, x: torch.Tensor, c: float):
        self.x = x
        self.c = c
        self.k = _gram(x.T.contiguous()) if x.device.type == "cpu" else x @ x.T

    def direction(self, act: torch.Tensor, m: torch.Tensor, grad: torch.Tensor, rtol: float) -> torch.Tensor:
        idx = torch.nonzero(act).squeeze(1)
        if idx.numel() == 0:
            return -grad
        xi = self.x[idx]
        k = self.k[idx][:, idx].clone()
        k.diagonal().add_(1.0 / (2 * self.c))
        chol = torch.linalg.cholesky(k)
        s = torch.cholesky_solve((xi @ grad)[:, None], chol)[:, 0]
        return -grad + xi.T @ s


class _FeatureSpaceNewton:
    """n > d: keep G = X_IᵀX_I (float32) updated with the rows entering/leaving I, and solve the
    Newton system by CG preconditioned with a float32 Cholesky factor of I + 2C·G, reusing the
    previous factor while only a few rows changed."""

    def __init__(self, x: torch.Tensor, c: float):
        self.x = x
        self.x32 = x.to(torch.float32)
        self.c = c
        self.active: torch.Tensor | None = None
        self.g: torch.Tensor | None = None
        self.factor: torch.Tensor | None = None
        self.factor_set: torch.Tensor | None = None

    def _update_gram(self, act: torch.Tensor) -> None:
        if self.active is None or int((act != self.active).sum()) > int(act.sum()):
            self.g = _gram(self.x32[act])
        else:
            added, removed = act & ~self.active, self.active & ~act
            if bool(added.any()):
                self.g += _gram(self.x32[added])
            if bool(removed.any()):
                self.g -= _gram(self.x32[removed])
        self.active = act

    def _refactor(self, act: torch.Tensor) -> None:
        h = 2 * self.c * self.g
        h.diagonal().add_(1.0)
        lf, info = torch.linalg.cholesky_ex(h)
        if int(info) != 0:  # float32 round-off broke definiteness: shift the preconditioner
            h.diagonal().add_(1e-5 * float(h.diagonal().mean()))
            lf, info = torch.linalg.cholesky_ex(h)
        if int(info) != 0:
            h = 2 * self.c * self.g.to(torch.float64)
            h.diagonal().add_(1.0)
            lf = torch.linalg.cholesky(h)
        self.factor = lf.to(torch.float64)
        self.factor_set = act.clone()

    def direction(self, act: torch.Tensor, m: torch.Tensor, grad: torch.Tensor, rtol: float) -> torch.Tensor:
        self._update_gram(act)
        n = act.numel()
        stale = self.factor is not None and int((act != self.factor_set).sum()) <= max(8, n // 500)
        if not stale:
            self._refactor(act)
        p, ok = _pcg(self.x, m, self.c, -grad, self.factor, rtol=rtol, max_steps=30 if stale else 200)
        if not ok and stale:
            self._refactor(act)
            p, _ = _pcg(self.x, m, self.c, -grad, self.factor, rtol=rtol, max_steps=200)
        return p


def _pcg(x: torch.Tensor, m: torch.Tensor, c: float, b: torch.Tensor, factor: torch.Tensor,
         rtol: float, max_steps: int) -> tuple[torch.Tensor, bool]:
    """Solve (I + 2C XᵀMX) p = b by CG preconditioned with factor·factorᵀ; returns (p, converged)."""
    lt = factor.T

    def prec(r: torch.Tensor) -> torch.Tensor:
        z = torch.linalg.solve_triangular(factor, r[:, None], upper=False)
        return torch.linalg.solve_triangular(lt, z, upper=True)[:, 0]

    def hv(v: torch.Tensor) -> torch.Tensor:
        return v + 2 * c * (x.T @ (m * (x @ v)))

    bnorm = float(torch.linalg.vector_norm(b))
    p = prec(b)
    r = b - hv(p)
    z = prec(r)
    q = z.clone()
    rz = float(r @ z)
    for _ in range(max_steps):
        if float(torch.linalg.vector_norm(r)) <= rtol * bnorm:
            return p, True
        hq = hv(q)
        step = rz / float(q @ hq)
        p = p + step * q
        r = r - step * hq
        z = prec(r)
        rz_new = float(r @ z)
        q = z + (rz_new / rz) * q
        rz = rz_new
    return p, float(torch.linalg.vector_norm(r)) <= rtol * bnorm


# ----------------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------------
def inception_discriminative_scores(real_feats: Any, fake_feats: Any,
                                    backend: Literal["sklearn", "torch"] = "sklearn",
                                    device: str | torch.device | None = None,
                                    c: float = C_DEFAULT) -> tuple[float, float]:
    """(P-IDS, U-IDS) of index-aligned real/fake features [N, D] (MAT's definition, module docstring).

    ``backend="sklearn"`` is MAT's LinearSVC; ``"torch"`` solves the same problem ≥5x faster at
    N = 5000 (``benchmarks/bench_ids.py``) on ``device`` (default: the features' device, else CPU)
    and agrees within ±0.005 on both scores (``tests/test_ids.py``). Memory: the stacked features
    in float64 + float32, ~3·2N·D·4 bytes (1.8 GB at N = 36,500).
    """
    real = _features(real_feats, "real_feats")
    fake = _features(fake_feats, "fake_feats")
    if tuple(real.shape) != tuple(fake.shape):
        raise InputError(f"P-IDS needs index-aligned pairs: real {tuple(real.shape)} vs fake "
                         f"{tuple(fake.shape)}",
                         "pass the ground truth and the inpainted image features in the same order")
    if real.shape[0] < 1:
        raise InputError("no features", "evaluate at least one image")
    if backend == "sklearn":
        from sklearn.svm import LinearSVC

        r = real.cpu().numpy() if isinstance(real, torch.Tensor) else real
        f = fake.cpu().numpy() if isinstance(fake, torch.Tensor) else fake
        inputs = np.concatenate([r, f]).astype(np.float64, copy=False)
        targets = np.concatenate([np.ones(len(r)), np.zeros(len(f))])
        svm = LinearSVC(dual=False, C=c)
        svm.fit(inputs, targets)
        dec_r = svm.decision_function(r)
        dec_f = svm.decision_function(f)
        # U-IDS from svm.score is identical to ids_from_decisions' count (decision > 0 -> class 1)
        return ids_from_decisions(dec_r, dec_f)
    if backend == "torch":
        if device is None:
            device = real.device if isinstance(real, torch.Tensor) else "cpu"
        dev = torch.device(device)
        n, d = real.shape
        # [real; fake] with liblinear's bias feature (intercept_scaling = 1) appended, built in place
        x = torch.empty((2 * n, d + 1), dtype=torch.float64, device=dev)
        x[:n, :d] = torch.as_tensor(real).to(dev)
        x[n:, :d] = torch.as_tensor(fake).to(dev)
        x[:, d] = 1.0
        y = torch.cat([torch.ones(n, dtype=torch.float64, device=dev),
                       -torch.ones(n, dtype=torch.float64, device=dev)])
        with torch.no_grad():
            w, _ = fit_l2svm_newton(x, y, c=c)
            dec = (x @ w).cpu().numpy()
        return ids_from_decisions(dec[:n], dec[n:])
    raise InputError(f"unknown IDS backend {backend!r}", "use 'sklearn' (reference) or 'torch'")
