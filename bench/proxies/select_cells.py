"""Pick the reference cells written to cells.txt (deterministic; see README.md).

usage: python select_cells.py [ACCURACY_CSV] > cells.txt
"""
import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "..", "shared", "data", "nb201", "nb201_accuracy.csv")

# Hand-picked: the two NB201 reference cells, the top cells, and degenerate /
# unusual topologies (all none, output cut off, pooling-only, skip-only, ...).
FIXED = [
    13714,  # best-known cell (94.37), FLOPs/params check
    3558,   # 93.63, FLOPs/params check
    9930, 6111,  # other top cells
    1651,   # all edges none: the cell outputs zeros
    10,     # convs in the cell but every edge into node 3 is none -> zero output
    12, 74,  # none-heavy, 10% accuracy
    7581,   # avg_pool only
    1835,   # skip_connect only
]


def ops(arch):
    return [e.split("~")[0] for node in arch.split("+") for e in node.strip("|").split("|")]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    rows = list(csv.DictReader(open(path)))
    by_index = {int(r["arch_index"]): r for r in rows}
    chosen = list(FIXED)
    # all-3x3 and all-1x1 cells, and the first pool+none-only cell
    for want in ({"nor_conv_3x3"}, {"nor_conv_1x1"}, {"avg_pool_3x3", "none"}):
        r = next(r for r in rows if set(ops(r["arch"])) == want)
        chosen.append(int(r["arch_index"]))
    # a spread over accuracy: the cell at 17 evenly spaced ranks of the
    # CIFAR-10 test accuracy ordering (ties broken by arch_index)
    ranked = sorted(rows, key=lambda r: (float(r["cifar10_test"]), int(r["arch_index"])))
    n = len(ranked)
    for k in range(17):
        idx = int(ranked[int((k + 0.5) * n / 17)]["arch_index"])
        while idx in chosen:  # skip duplicates deterministically
            idx = int(ranked[[int(r["arch_index"]) for r in ranked].index(idx) + 1]["arch_index"])
        chosen.append(idx)
    for i in chosen:
        print(by_index[i]["arch"])
    for i in chosen:
        print(i, by_index[i]["cifar10_test"], by_index[i]["arch"], file=sys.stderr)


if __name__ == "__main__":
    main()
