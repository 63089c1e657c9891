#!/usr/bin/env python3
# Pool several bench.txt runs (each line of a client in a benchmark = one round,
# in order) and test the per-round log(new/old) ratios: geometric mean, median
# [min,max], sign test and an exact two-sided Wilcoxon signed-rank p (random
# sign flips, Monte Carlo when n > 20).
import re, sys, math, random, statistics
from collections import defaultdict
pairs = [("resocket", "resocket-old", "Events"), ("resocket-onevent", "resocket-old-onevent", "OnEvent")]
ratios = defaultdict(list)
for path in sys.argv[1:]:
    rows = defaultdict(lambda: defaultdict(list))
    for line in open(path):
        m = re.match(r'Benchmark(\w+)/impl=(\S+)\s+\d+\s+([\d.]+) ns/op', line)
        if m:
            rows[m[1]][m[2]].append(float(m[3]))
    for b in rows:
        for new, old, mode in pairs:
            if new in rows[b] and old in rows[b]:
                ratios[(b, mode)] += [x / y for x, y in zip(rows[b][new], rows[b][old])]
def wilcoxon_p(d):
    d = [x for x in d if x != 0]
    n = len(d)
    ranks = sorted(range(n), key=lambda i: abs(d[i]))
    r = [0] * n
    for k, i in enumerate(ranks):
        r[i] = k + 1
    w = sum(r[i] for i in range(n) if d[i] > 0)
    mu = n * (n + 1) / 4
    obs = abs(w - mu)
    if n <= 20:
        cnt = 0
        for mask in range(1 << n):
            s = sum(r[i] for i in range(n) if mask >> i & 1)
            cnt += abs(s - mu) >= obs - 1e-9
        return cnt / (1 << n)
    rnd = random.Random(1); N = 200000; cnt = 0
    for _ in range(N):
        s = sum(x for x in r if rnd.random() < 0.5)
        cnt += abs(s - mu) >= obs - 1e-9
    return cnt / N
def sign_p(k, n):
    t = min(k, n - k)
    return min(1, 2 * sum(math.comb(n, i) for i in range(t + 1)) / 2 ** n)
print("| benchmark | mode | rounds | new÷old time/op: median [min, max] | geomean | new slower | sign p | Wilcoxon p |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for (b, mode), r in ratios.items():
    s = sorted(r); lg = [math.log(x) for x in r]
    k = sum(x > 1 for x in r)
    print(f"| {b} | {mode} | {len(r)} | {statistics.median(r):.3f} [{s[0]:.3f}, {s[-1]:.3f}] | {math.exp(statistics.mean(lg)):.3f} | {k}/{len(r)} | {sign_p(k, len(r)):.3f} | {wilcoxon_p(lg):.3f} |")
