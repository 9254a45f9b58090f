"""Paired bootstrap of the difference in Kendall τ-b between two predictors on one study's cells.

    .venv-bench/bin/python bench/combination/paired_tau.py CELLS.parquet A B [RESAMPLES]

Resamples the cells (seeded), recomputes τ of A and of B with each dataset's accuracy on the
same resample, and prints τ(A) − τ(B) with its 95 % percentile interval: the intervals of two
predictors measured on the same cells overlap far more than their difference is uncertain.
−∞ scores (degenerate cells) rank last with ties, as in the study.
"""
import sys

import numpy as np
import pyarrow.parquet as pq
from scipy.stats import kendalltau

DATASETS = ["cifar10_test", "cifar100_test", "imagenet16_120_test"]


def main(path, a, b, resamples="1000"):
    rows = [r for r in pq.read_table(path).to_pylist() if r.get("repeat", 0) == 0]
    finite_floor = lambda xs: np.where(np.isfinite(xs), xs, np.nanmin(xs[np.isfinite(xs)]) - 1.0)
    x = finite_floor(np.array([r[a] for r in rows], dtype=float))
    y = finite_floor(np.array([r[b] for r in rows], dtype=float))
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(rows), len(rows)) for _ in range(int(resamples))]
    for dataset in DATASETS:
        acc = np.array([r[dataset] for r in rows], dtype=float)
        point = kendalltau(x, acc).statistic - kendalltau(y, acc).statistic
        diffs = [kendalltau(x[i], acc[i]).statistic - kendalltau(y[i], acc[i]).statistic for i in draws]
        lo, hi = np.percentile(diffs, [2.5, 97.5])
        print(f"{dataset:22} tau({a}) - tau({b}) = {point:+.3f} [{lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
