"""Linear quantile regression with an L1 penalty, solved exactly as a linear programme (HiGHS).

The L1 penalty shrinks segment effects toward zero, i.e. toward the parent (the global level
or the coarser dimensions): a thin segment keeps the pooled value until its evidence outweighs
the penalty. This is the quantile analogue of partial pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linprog

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class QuantileFit:
    """Coefficients of one fitted quantile."""

    q: float
    coef: FloatArray  # one per column of X, intercept included as a column

    def predict(self, x: sparse.csr_matrix | FloatArray) -> FloatArray:
        """Predicted q-quantile for each row of `x`."""
        return np.asarray(x @ self.coef, dtype=np.float64).ravel()


def pinball(y: FloatArray, pred: FloatArray, q: float) -> float:
    """Mean pinball (quantile) loss of `pred` at level q."""
    diff = y - pred
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def fit_quantile(
    x: sparse.csr_matrix | FloatArray,
    y: FloatArray,
    q: float,
    penalty: FloatArray,
    weights: FloatArray | None = None,
) -> QuantileFit:
    """Minimise mean weighted pinball loss + sum(penalty * |coef|).

    Args:
        x: design matrix (n x p), a column of ones included where an intercept is wanted.
        y: targets (n).
        q: the quantile level, 0 < q < 1.
        penalty: per-coefficient L1 weights (p); 0 leaves a coefficient free.
        weights: per-observation weights (n), default 1.

    Returns:
        The fitted coefficients.

    Raises:
        RuntimeError: when the solver fails (it should not for finite inputs).
    """
    xs = sparse.csr_matrix(x, dtype=np.float64)
    n, p = xs.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    # Variables: beta_plus (p), beta_minus (p), u (n), v (n), all >= 0.
    # X (b+ - b-) + u - v = y ; cost: pen*(b+ + b-) + q*w*u + (1-q)*w*v
    cost = np.concatenate([penalty, penalty, q * w, (1 - q) * w])
    eye = sparse.identity(n, format="csr")
    a_eq = sparse.hstack([xs, -xs, eye, -eye], format="csr")
    res = linprog(cost, A_eq=a_eq, b_eq=y, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"quantile regression failed: {res.message}")
    sol = res.x
    return QuantileFit(q=q, coef=sol[:p] - sol[p : 2 * p])
