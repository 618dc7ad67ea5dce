"""P-IDS / U-IDS: the sklearn backend is MAT's recipe; the torch backend solves the same liblinear
problem and must agree within ±0.005 on both scores; the solver is checked for optimality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.svm import LinearSVC

from inpaintbench.errors import InputError
from inpaintbench.metrics import ids as I
from inpaintbench.metrics.ids import fit_l2svm_newton, ids_from_decisions, inception_discriminative_scores

AGREE = 0.005  # |torch - sklearn| on both scores


def inception_like(n: int, d: int, shift: float = 0.0, noise: float = 0.1, relu: bool = True,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Index-aligned (real, fake) features. Latent factors -> d dims; the fake of pair i is real i's
    latent perturbed by ``noise`` and moved by ``shift`` along one direction (an inpainting keeps
    most of the image). ``relu``: nonnegative, averaged rectified maps like Inception pool features;
    else Gaussian."""
    rng = np.random.default_rng(seed)
    rank = max(8, d // 20)
    mix = rng.standard_normal((rank, d)) / np.sqrt(rank)
    bias = rng.normal(-0.3, 0.5, d)
    z = rng.standard_normal((n, rank))
    u = rng.standard_normal(rank)
    u /= np.linalg.norm(u)
    zf = z + noise * rng.standard_normal((n, rank)) + shift * u

    def features(lat: np.ndarray) -> np.ndarray:
        h = lat @ mix + bias
        if not relu:
            return (h + 0.3 * rng.standard_normal(h.shape)).astype(np.float32)
        acc = np.zeros_like(h)
        for _ in range(4):
            acc += np.maximum(h + 0.5 * rng.standard_normal(h.shape), 0)
        return (acc / 4).astype(np.float32)

    return features(z), features(zf)


def mat_ids(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    """MAT's cal_fid_pids_uids.py, restated: LinearSVC(dual=False) on [real, fake], labels 1/0."""
    svm = LinearSVC(dual=False)
    x = np.concatenate([real, fake])
    y = np.concatenate([np.ones(len(real)), np.zeros(len(fake))])
    svm.fit(x, y)
    u_ids = 1 - svm.score(x, y)
    p_ids = np.mean(svm.decision_function(fake) > svm.decision_function(real))
    return float(p_ids), float(u_ids)


def check_agreement(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    ref = inception_discriminative_scores(real, fake, backend="sklearn")
    ours = inception_discriminative_scores(real, fake, backend="torch")
    assert abs(ours[0] - ref[0]) <= AGREE, (ours, ref)
    assert abs(ours[1] - ref[1]) <= AGREE, (ours, ref)
    return ref


def objective(w: np.ndarray, x: np.ndarray, y: np.ndarray, c: float = 1.0) -> float:
    return float(0.5 * w @ w + c * np.sum(np.maximum(0, 1 - y * (x @ w)) ** 2))


def augmented(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([real, fake]).astype(np.float64)
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    y = np.concatenate([np.ones(len(real)), -np.ones(len(fake))])
    return x, y


# ---------------------------------------------------------------------------------------------
# definitions
# ---------------------------------------------------------------------------------------------
def test_ids_from_decisions_by_hand():
    dec_real = np.array([1.0, -0.5, 0.2, 0.0])
    dec_fake = np.array([-1.0, 0.5, 0.3, -0.1])
    # correct: real > 0 -> 2 of 4 (0.0 is not > 0); fake <= 0 -> 2 of 4  => accuracy 4/8
    # pairs with fake > real: (0.5 > -0.5), (0.3 > 0.2) => 2/4
    assert ids_from_decisions(dec_real, dec_fake) == (0.5, 0.5)


def test_sklearn_backend_is_mats_recipe():
    real, fake = inception_like(300, 64, noise=0.1, seed=1)
    assert inception_discriminative_scores(real, fake, backend="sklearn") == pytest.approx(mat_ids(real, fake))


# ---------------------------------------------------------------------------------------------
# our solver
# ---------------------------------------------------------------------------------------------
def test_exact_line_search_matches_brute_force():
    rng = np.random.default_rng(0)
    descent = 0
    for trial in range(6):
        n = 50
        a = rng.normal(0.5, 1.0, n)
        b = rng.normal(0.0, 1.0, n)
        b[:3] = 0.0  # flat terms
        wp, pp = -abs(rng.normal(5, 2)), abs(rng.normal(3, 1))  # a descent direction

        def phi(t, a=a, b=b, wp=wp, pp=pp):
            return wp * t + 0.5 * pp * t * t + np.sum(np.maximum(0, a - t * b) ** 2)

        t = I._exact_line_search(torch.from_numpy(a), torch.from_numpy(b), wp, pp, 1.0)
        ref = minimize_scalar(phi, bounds=(0, 100), method="bounded", options={"xatol": 1e-12}).x
        # float64. Ours is the exact piecewise-quadratic root (a few ulp). Bounded Brent stops once its
        # bracket is within tol2 = 2·(√eps·|t| + xatol/3) (scipy's tol1), but it compares φ values, which
        # resolve t only to δ with ½φ''δ² = eps·|φ|: δ = √(2·eps·|φ|/φ''), φ'' = pp + 2·Σ_active b²
        eps = np.finfo(float).eps
        curv = pp + 2 * np.sum(b[a - ref * b > 0] ** 2)
        tol = 2 * (np.sqrt(eps) * abs(ref) + 1e-12 / 3) + 2 * np.sqrt(2 * eps * abs(phi(ref)) / curv)
        assert abs(t - ref) <= tol, (trial, t, ref, tol)
        descent += (phi(1e-7) < phi(0))
    assert 2 <= descent <= 5  # both kinds of direction were exercised (non-descent -> t = 0)


@pytest.mark.parametrize("n,d", [(100, 256), (400, 64)], ids=["sample-space", "feature-space"])
def test_solver_reaches_the_optimum(n, d):
    """Our w is at least as good as liblinear's on liblinear's own objective, with ~zero gradient."""
    real, fake = inception_like(n, d, noise=0.2, seed=2)
    x, y = augmented(real, fake)
    w, steps = fit_l2svm_newton(torch.from_numpy(x), torch.from_numpy(y))
    w = w.numpy()
    svm = LinearSVC(dual=False).fit(x[:, :-1], (y > 0).astype(int))
    w_sk = np.concatenate([svm.coef_[0], svm.intercept_])
    assert objective(w, x, y) <= objective(w_sk, x, y) * (1 + 1e-9)
    act = (1 - y * (x @ w)) > 0
    grad = w + 2 * x[act].T @ ((x @ w)[act] - y[act])
    g0 = np.linalg.norm(2 * x.T @ y)  # ‖∇f(0)‖ (C = 1)
    assert np.linalg.norm(grad) <= 1e-6 * g0  # our stopping rule is 1e-7·‖∇f(0)‖ (float64)
    assert steps < 50
    # f = ½‖w‖² + convex loss is 1-strongly convex, so ‖w - w*‖₂ ≤ ‖∇f(w)‖₂. liblinear's primal Newton
    # (tol 1e-4) stops at ‖∇f‖ ≤ 1e-4·min(#pos, #neg)/N·‖∇f(0)‖ = 0.5e-4·g0 (balanced classes), ours at
    # 1e-6·g0 (asserted above): the two solutions are within (0.5e-4 + 1e-6)·g0 of each other.
    n_pos, n_neg = int((y > 0).sum()), int((y < 0).sum())
    assert np.linalg.norm(w - w_sk) <= (1e-4 * min(n_pos, n_neg) / len(y) + 1e-6) * g0


# ---------------------------------------------------------------------------------------------
# agreement with sklearn (fast: d = 128; slow: Inception-sized d = 2048)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shift,noise,relu",
    [(0.0, 0.1, True), (0.5, 0.1, True), (0.0, 0.05, False), (1.0, 0.2, False)],
    ids=["relu-close", "relu-shifted", "gauss-close", "gauss-shifted"],
)
def test_agreement_with_sklearn_small_d(shift, noise, relu):
    real, fake = inception_like(600, 128, shift=shift, noise=noise, relu=relu, seed=3)
    p_ids, u_ids = check_agreement(real, fake)
    assert 0.0 < u_ids < 0.5  # a non-trivial case (not separable, not chance)


@pytest.mark.slow
@pytest.mark.parametrize(
    "n,shift,noise,relu",
    [
        (600, 0.0, 0.1, True),  # 2N < d: separable, both scores 0 (and liblinear is slow here)
        (2000, 0.0, 0.1, True),
        (2000, 0.3, 0.1, True),
        (2000, 0.0, 0.05, False),
    ],
)
def test_agreement_with_sklearn_inception_sized(n, shift, noise, relu):
    real, fake = inception_like(n, 2048, shift=shift, noise=noise, relu=relu, seed=n)
    p_ids, u_ids = check_agreement(real, fake)
    if n == 600:
        assert p_ids == 0.0 and u_ids == 0.0
    else:
        assert u_ids > 0.05


@pytest.mark.slow
def test_agreement_with_sklearn_n5000():
    real, fake = inception_like(5000, 2048, shift=0.0, noise=0.1, relu=True, seed=5000)
    p_ids, u_ids = check_agreement(real, fake)
    assert u_ids > 0.1


def test_inputs():
    real, fake = inception_like(50, 16, seed=4)
    with pytest.raises(InputError, match="index-aligned"):
        inception_discriminative_scores(real, fake[:40])
    with pytest.raises(InputError, match="backend"):
        inception_discriminative_scores(real, fake, backend="liblinear")
    with pytest.raises(InputError, match="NaN"):
        inception_discriminative_scores(np.full_like(real, np.nan), fake)
    # torch tensors in, same numbers
    a = inception_discriminative_scores(torch.from_numpy(real), torch.from_numpy(fake), backend="torch")
    b = inception_discriminative_scores(real, fake, backend="torch")
    assert a == b
