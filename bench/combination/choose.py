"""Chooses a combination of proxy components on one study's cells (never the cells it is
reported on): every subset of 2..K of the given components, aggregated by rank sum or by
AZ-NAS's sum of ln(rank / N), ranked by its mean Kendall tau-b over the three datasets.

The rules are the study's own (`tenas_core::proxy::combine`): components are "higher is
better", ranks are 1..N ascending with ties averaged, so -inf ranks last. Prints the best
candidates and the chosen one as a `[[correlation.combine]]` block.

    .venv-bench/bin/python bench/combination/choose.py findings/proxies/cells.parquet \
        --components expressivity,progressivity,trainability,complexity,zico,... --max-size 4
"""
import argparse
import itertools
import math

import numpy as np
import pyarrow.parquet as pq

DATASETS = ["cifar10_test", "cifar100_test", "imagenet16_120_test"]


def average_ranks(values):
    """1..N ascending, ties averaged (as `tenas_core::stats::average_ranks`)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pair_signs(x):
    """sign(x_i - x_j) over the pairs i < j."""
    upper = np.triu_indices(len(x), k=1)
    return np.sign(x[:, None] - x[None, :])[upper]


def tau_b_of_signs(sx, sy):
    return float((sx * sy).sum() / math.sqrt((sx * sx).sum() * (sy * sy).sum()))


def kendall_tau_b(x, y):
    return tau_b_of_signs(pair_signs(x), pair_signs(y))


def combine(ranks, names, aggregation, n):
    if aggregation == "rank_sum":
        return sum(ranks[c] for c in names)
    return sum(np.log(ranks[c] / n) for c in names)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cells", help="a study's cells table (Parquet)")
    p.add_argument("--components", required=True, help="comma-separated component columns")
    p.add_argument("--max-size", type=int, default=4)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--name", default="ours")
    args = p.parse_args()
    table = pq.read_table(args.cells)
    # Components sit on each cell's repeat-0 row.
    first = table.column("repeat").to_numpy() == 0
    column = lambda name: table.column(name).to_numpy(zero_copy_only=False).astype(float)[first]
    components = args.components.split(",")
    n = int(first.sum())
    ranks = {c: average_ranks(column(c)) for c in components}
    accuracy = {d: pair_signs(column(d)) for d in DATASETS}
    scored = []
    for size in range(2, args.max_size + 1):
        for names in itertools.combinations(components, size):
            for aggregation in ["rank_sum", "log_rank"]:
                x = combine(ranks, names, aggregation, n)
                sx = pair_signs(x)
                taus = [tau_b_of_signs(sx, accuracy[d]) for d in DATASETS]
                scored.append((float(np.mean(taus)), taus, names, aggregation))
    scored.sort(key=lambda s: -s[0])
    print(f"{len(scored)} candidates over {n} cells; best by mean tau over {DATASETS}:")
    for mean, taus, names, aggregation in scored[: args.top]:
        print(f"  {mean:.4f}  {' / '.join(f'{t:.3f}' for t in taus)}  {aggregation}({', '.join(names)})")
    _, _, names, aggregation = scored[0]
    quoted = ", ".join(f'"{c}"' for c in names)
    print(f'\n[[correlation.combine]]\nname = "{args.name}"\ncomponents = [{quoted}]\naggregation = "{aggregation}"')


if __name__ == "__main__":
    main()
