#!/usr/bin/env python3
"""Reference values of training-free NAS proxies on NAS-Bench-201 cells.

Runs the *published* implementations (imported at run time from
bench/published/, never copied here) on the NB201 network built by AZ-NAS's
own model code, following AZ-NAS's NB201/tss_general.ipynb protocol, and
writes one CSV row per (cell, proxy, component). See PROXIES.md for what every
proxy computes and README.md for set-up.

CSV columns: arch,proxy,component,value,seconds,note
"""
import argparse
import copy
import csv
import math
import os
import random
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
PUBLISHED = os.path.join(REPO, "bench", "published")
AZ_NB201 = os.path.join(PUBLISHED, "AZ-NAS", "NB201")
ZC_NAS = os.path.join(PUBLISHED, "zero-cost-nas")

# CIFAR-10 normalisation used by AZ-NAS's data pipeline
# (xautodl/datasets/get_dataset_with_transform.py).
CIFAR10_MEAN = [x / 255 for x in [125.3, 123.0, 113.9]]
CIFAR10_STD = [x / 255 for x in [63.0, 62.1, 66.7]]

# proxy name -> (kind of input, source)
PROXIES = {
    "az_nas": "gaussian",      # AZ-NAS compute_az_nas_score (+ complexity = FLOPs)
    "zico": "real",            # AZ-NAS compute_zico_score (from ZiCo)
    "naswot": "gaussian",      # AZ-NAS compute_naswot_score (from ZenNAS)
    "synflow": "ones",         # AZ-NAS compute_synflow_score
    "snip": "real",            # AZ-NAS compute_snip_score (from zero-cost-nas)
    "grasp": "real",           # AZ-NAS compute_grasp_score (from zero-cost-nas)
    "grad_norm": "gaussian",   # AZ-NAS compute_gradnorm_score (from ZenNAS)
    "zen": "gaussian",         # AZ-NAS compute_zen_score (from ZenNAS)
    "jacov": "real",           # zero-cost-nas measures/jacob_cov.py
    "fisher": "real",          # zero-cost-nas measures/fisher.py
    "params": "none",          # xautodl count_parameters_in_MB
    "flops": "none",           # xautodl get_model_infos (what NB201's API reports)
    # zero-cost-nas's own versions of proxies AZ-NAS also ships (default init,
    # real data, per-layer sums) for comparison
    "zc_grad_norm": "real",
    "zc_snip": "real",
    "zc_grasp": "real",
    "zc_synflow": "ones",
}
DEFAULT_PROXIES = list(PROXIES)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", required=True, help="file with one NB201 arch string per line")
    p.add_argument("--proxies", default=",".join(DEFAULT_PROXIES),
                   help="comma-separated subset of: " + ",".join(PROXIES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--data", default=os.environ.get("TENAS_DATA", os.path.join(REPO, "..", "shared", "data")),
                   help="data root holding cifar-10-batches-bin/data_batch_1.bin")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return p.parse_args(argv)


def setup_imports():
    for path in (ZC_NAS, AZ_NB201):
        if not os.path.isdir(path):
            sys.exit(f"missing published code at {path}; see bench/proxies/README.md")
        if path not in sys.path:
            sys.path.insert(0, path)
    import torch
    # The published NB201 code was written for one CUDA GPU: compute_az_nas_score
    # calls model.cuda() unconditionally and compute_zico_score builds
    # nn.CrossEntropyLoss().cuda(). On a CPU-only torch we make Module.cuda a
    # no-op (every other .cuda is guarded by `gpu is not None` and we pass None).
    if not torch.cuda.is_available():
        torch.nn.Module.cuda = lambda self, *a, **k: self


def seed_all(seed):
    # what xautodl.procedures.prepare_seed does (minus the CUDA seed)
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_cifar10_batches(root, batch, n_batches=2):
    """First n_batches*batch records of data_batch_1.bin, in file order, as
    normalised float tensors (N,3,32,32) and int64 labels (no augmentation)."""
    import torch
    path = os.path.join(root, "cifar-10-batches-bin", "data_batch_1.bin")
    n = batch * n_batches
    raw = np.fromfile(path, dtype=np.uint8, count=n * 3073)
    if raw.size < n * 3073:
        sys.exit(f"{path}: need {n} records")
    raw = raw.reshape(n, 3073)
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    img = raw[:, 1:].reshape(n, 3, 32, 32).astype(np.float32) / 255.0
    mean = np.array(CIFAR10_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(CIFAR10_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    img = torch.from_numpy((img - mean) / std)
    return [(img[i * batch:(i + 1) * batch].contiguous(), labels[i * batch:(i + 1) * batch].contiguous())
            for i in range(n_batches)]


def build_network(arch):
    from custom.tss_model import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure
    net = TinyNetwork(16, 5, Structure.str2structure(arch), 10)
    net.train()  # the notebook calls network.train() before every proxy
    return net


class LogitsOnly:
    """Wraps AZ-NAS's TinyNetwork (forward -> (features, logits)) so that
    zero-cost-nas's measures, which expect net(x) -> logits, can drive it."""

    @staticmethod
    def make(net):
        import torch.nn as nn

        class _Wrap(nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)[1]

        return _Wrap(net)


def flops_params(net):
    """(MFLOPs, M params) exactly as NAS-Bench-201 / xautodl count them."""
    from xautodl.utils import get_model_infos
    return get_model_infos(copy.deepcopy(net), (1, 3, 32, 32))


def zc_measure(net, name, real_batches):
    """Run one zero-cost-nas measure through its own find_measures driver
    (dataload 'random', 1 batch), i.e. exactly nasbench2_pred.py's path."""
    import torch
    from foresight.pruners import predictive
    wrapped = LogitsOnly.make(net)
    res = predictive.find_measures(wrapped, real_batches[:1], ("random", 1, 10), torch.device("cpu"),
                                   measure_names=[name])
    return float(res[name])


def run_proxy(name, arch, net, batch, real_batches):
    """Returns a list of (component, value, seconds)."""
    kw = dict(gpu=None, resolution=32, batch_size=batch)
    if name == "az_nas":
        from ZeroShotProxy import compute_az_nas_score as m
        t0 = time.perf_counter()
        info = m.compute_nas_score(net, trainloader=None, **kw)
        dt = time.perf_counter() - t0
        out = [(k, info[k], dt) for k in ("expressivity", "progressivity", "trainability")]
        t0 = time.perf_counter()
        fl, _ = flops_params(net)
        out.append(("complexity", fl, time.perf_counter() - t0))
        return out
    if name in ("zico", "naswot", "synflow", "snip", "grasp", "grad_norm", "zen"):
        import importlib
        mod = {"grad_norm": "gradnorm"}.get(name, name)
        m = importlib.import_module(f"ZeroShotProxy.compute_{mod}_score")
        loader = real_batches if PROXIES[name] == "real" else None
        t0 = time.perf_counter()
        info = m.compute_nas_score(net, trainloader=loader, **kw)
        dt = time.perf_counter() - t0
        return [(k, v, dt) for k, v in info.items()]
    if name in ("jacov", "fisher", "zc_grad_norm", "zc_snip", "zc_grasp", "zc_synflow"):
        zc = {"jacov": "jacob_cov"}.get(name, name.replace("zc_", ""))
        t0 = time.perf_counter()
        v = zc_measure(net, zc, real_batches)
        return [(zc if name.startswith("zc_") else name, v, time.perf_counter() - t0)]
    if name in ("params", "flops"):
        t0 = time.perf_counter()
        fl, pa = flops_params(net)
        dt = time.perf_counter() - t0
        return [("params_M", pa, dt)] if name == "params" else [("flops_M", fl, dt)]
    raise ValueError(f"unknown proxy {name}")


def average_ranks(values):
    """Ranks 1..N ascending, ties averaged (scipy.stats.rankdata 'average')."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def fmt(v):
    if v is None:
        return ""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def main(argv=None):
    args = parse_args(argv)
    setup_imports()
    import torch
    torch.set_num_threads(args.threads)
    names = [p.strip() for p in args.proxies.split(",") if p.strip()]
    for n in names:
        if n not in PROXIES:
            sys.exit(f"unknown proxy {n!r}; known: {','.join(PROXIES)}")
    cells = [l.strip() for l in open(args.cells) if l.strip() and not l.startswith("#")]
    real = load_cifar10_batches(args.data, args.batch) if any(PROXIES[n] == "real" for n in names) else None

    t_start = time.perf_counter()
    az = {}  # arch -> {component: value}
    with open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "proxy", "component", "value", "seconds", "note"])
        for ci, arch in enumerate(cells):
            for name in names:
                # fresh network and fresh RNG stream for every (cell, proxy)
                seed_all(args.seed)
                t0 = time.perf_counter()
                net = build_network(arch)
                w.writerow([arch, name, "_build", "", fmt(time.perf_counter() - t0), "network construction"])
                note = ""
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        rows = run_proxy(name, arch, net, args.batch, real)
                    except Exception as e:  # degenerate cells must not stop the run
                        rows = [(name, float("nan"), float("nan"))]
                        note = f"exception {type(e).__name__}: {e}".replace("\n", " ")[:300]
                rw = sorted({str(c.message).split("\n")[0] for c in caught if issubclass(c.category, RuntimeWarning)})
                if rw:
                    note = (note + " | " if note else "") + "RuntimeWarning: " + "; ".join(rw)[:300]
                for comp, val, sec in rows:
                    w.writerow([arch, name, comp, fmt(val), fmt(sec), note])
                    if name == "az_nas":
                        az.setdefault(arch, {})[comp] = float(val)
                fh.flush()
                del net
            print(f"[{ci + 1}/{len(cells)}] {arch} done, {time.perf_counter() - t_start:.1f}s", flush=True)

        # AZ-NAS aggregation over this run's population (tss_general.ipynb cell 8):
        # sum over the 4 components of log(rank / N), ranks ascending, ties averaged.
        if az:
            archs = [a for a in cells if a in az]
            comps = ["complexity", "expressivity", "progressivity", "trainability"]
            agg = np.zeros(len(archs))
            for c in comps:
                agg += np.log(average_ranks([az[a][c] for a in archs]) / len(archs))
            for a, v in zip(archs, agg):
                w.writerow([a, "az_nas", "rank_agg", fmt(v), "",
                            f"sum_k log(rank_k/N) over {'+'.join(comps)}, N={len(archs)} cells of this run"])
        w.writerow(["_total", "_run", "_wall", "", fmt(time.perf_counter() - t_start),
                    f"threads={args.threads} seed={args.seed} batch={args.batch} proxies={'+'.join(names)}"])
    print(f"wrote {args.out} in {time.perf_counter() - t_start:.1f}s")


if __name__ == "__main__":
    main()
