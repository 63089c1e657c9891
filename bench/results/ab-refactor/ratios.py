#!/usr/bin/env python3
# Paired new/old ratios from benchrun's bench.txt. benchrun writes, per
# benchmark, its measurements round by round (rep.add in runThroughput's
# round loop), one line per client per round, in the round's rotated order;
# so the k-th line of a client within a benchmark is round k.
import re, sys, statistics
from collections import defaultdict
path = sys.argv[1]
rows = defaultdict(lambda: defaultdict(list))  # bench -> impl -> [ns/op by round]
allocs = defaultdict(lambda: defaultdict(list))
for line in open(path):
    m = re.match(r'Benchmark(\w+)/impl=(\S+)\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) B/op\s+([\d.]+) allocs/op', line)
    if m:
        b, impl, ns, by, al = m.groups()
        rows[b][impl].append(float(ns)); allocs[b][impl].append(float(al))
pairs = [("resocket", "resocket-old", "Events"), ("resocket-onevent", "resocket-old-onevent", "OnEvent")]
print("| benchmark | mode | rounds | new÷old time/op, per round: median [min, max] | new÷old rate | per-round ratios (time) | rounds new slower | allocs/op new vs old (median) |")
print("|---|---|---:|---:|---:|---|---:|---|")
for b in rows:
    for new, old, mode in pairs:
        if new not in rows[b] or old not in rows[b]:
            continue
        n, o = rows[b][new], rows[b][old]
        assert len(n) == len(o), (b, len(n), len(o))
        r = [x / y for x, y in zip(n, o)]
        s = sorted(r)
        rate = sorted(1 / x for x in r)
        print(f"| {b} | {mode} | {len(r)} | {statistics.median(r):.3f} [{s[0]:.3f}, {s[-1]:.3f}] | "
              f"{statistics.median(rate):.3f} [{rate[0]:.3f}, {rate[-1]:.3f}] | {' '.join(f'{x:.2f}' for x in r)} | "
              f"{sum(x > 1 for x in r)}/{len(r)} | {statistics.median(allocs[b][new]):.2f} vs {statistics.median(allocs[b][old]):.2f} |")
