"""Do two `cells` tables of correlation studies hold the same component values, bit for bit?

    .venv-bench/bin/python bench/proxies/same_values.py OLD.parquet NEW.parquet [COLUMN...]

Matches rows by cell (`arch`) on repeat 0 and compares every component column that both
tables hold (or the named ones): a change meant to be only faster (fewer gradients, one pass
instead of two) must leave every value exactly as it was. Exits 1 on any difference.
"""
import math
import sys

import pyarrow.parquet as pq

NOT_COMPONENTS = {"seed", "arch", "nb201_index", "repeat"}


def rows(path):
    table = pq.read_table(path).to_pylist()
    return {r["arch"]: r for r in table if r.get("repeat", 0) == 0}


def same(a, b):
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def main(old_path, new_path, *columns):
    old, new = rows(old_path), rows(new_path)
    shared = [arch for arch in new if arch in old]
    if not shared:
        sys.exit("the two tables share no cell")
    first = new[shared[0]]
    names = columns or [
        c for c in first if c not in NOT_COMPONENTS and c in old[shared[0]]
        and not c.endswith("_test")
    ]
    differing = 0
    for name in names:
        bad = [a for a in shared if not same(old[a][name], new[a][name])]
        differing += len(bad)
        worst = max(
            (abs(old[a][name] - new[a][name]) / max(abs(old[a][name]), 1e-300) for a in bad
             if old[a][name] is not None and new[a][name] is not None
             and math.isfinite(old[a][name]) and math.isfinite(new[a][name])),
            default=0.0,
        )
        print(f"{name:14} {len(shared) - len(bad):4}/{len(shared)} identical"
              + (f", worst relative difference {worst:.3g}" if bad else ""))
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
