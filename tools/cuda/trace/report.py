#!/usr/bin/env python3
"""Summarise a kernel timeline written by rmd_trace.so (TSV: start_ns end_ns stream name).

Steps are split at idle gaps longer than --gap-ms (run the bench with RMD_STEP_PAUSE_MS above
it); reported are --steps segments from segment --first on, or with --last N the timed steps: the
last N segments of the kernel count most segments of 100+ kernels share (steady-state steps all
launch the same kernels; gpu_step also pauses before its scoring passes so its last step stands
alone). Per step: wall span, GPU-busy time (union of kernel intervals), kernel count, and time per
kernel name and per family (cuBLAS, flash, cubecl).
"""
import argparse
import collections
import sys


def family(name):
    n = name.lower()
    if "flash" in n:
        return "flash (ours)"
    if any(s in n for s in ("gemm", "xmma", "cutlass", "cublas", "sm90_", "sm80_", "ampere", "hopper")):
        return "cuBLAS"
    return "cubecl/other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--gap-ms", type=float, default=40.0)
    ap.add_argument("--first", type=int, default=3, help="index of the first segment reported")
    ap.add_argument("--last", type=int, default=0,
                    help="instead of --first/--steps: the last N steady-state steps (see above)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    rows = []
    with open(a.trace) as f:
        for line in f:
            p = line.rstrip("\n").split("\t", 3)
            if len(p) == 4:
                rows.append((int(p[0]), int(p[1]), p[3]))
    rows.sort()
    if not rows:
        sys.exit("no kernel records")
    steps, cur = [], [rows[0]]
    last_end = rows[0][1]
    for r in rows[1:]:
        if r[0] - last_end > a.gap_ms * 1e6:
            steps.append(cur)
            cur = []
        cur.append(r)
        last_end = max(last_end, r[1])
    steps.append(cur)
    print(f"{len(rows)} kernels, {len(steps)} segments split at idle gaps > {a.gap_ms} ms")
    for i, s in enumerate(steps):
        span = (max(r[1] for r in s) - s[0][0]) / 1e6
        print(f"  segment {i}: {len(s)} kernels, span {span:.1f} ms")
    if a.last:
        counts = collections.Counter(len(s) for s in steps if len(s) >= 100)
        if not counts:
            sys.exit("no segment of 100+ kernels")
        steady, seen = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if seen < a.last:
            sys.exit(f"only {seen} segments of the most common size ({steady} kernels); wanted {a.last}")
        picked = [i for i, s in enumerate(steps) if len(s) == steady][-a.last:]
        a.first, a.steps = picked[0], a.last
        chosen = [steps[i] for i in picked]
    else:
        chosen = steps[a.first:a.first + a.steps]
    by_name, by_fam = collections.Counter(), collections.Counter()
    count = collections.Counter()
    total_span = total_busy = 0.0
    for s in chosen:
        span = (max(r[1] for r in s) - s[0][0]) / 1e6
        busy, cur_s, cur_e = 0, None, None
        for st, en, name in s:
            by_name[name] += (en - st) / 1e6
            by_fam[family(name)] += (en - st) / 1e6
            count[name] += 1
            if cur_e is None or st > cur_e:
                if cur_e is not None:
                    busy += cur_e - cur_s
                cur_s, cur_e = st, en
            else:
                cur_e = max(cur_e, en)
        busy += cur_e - cur_s
        total_span += span
        total_busy += busy / 1e6
    n = len(chosen)
    print(f"segments {a.first}.. ({n}), per step: span {total_span / n:.1f} ms, GPU busy {total_busy / n:.1f} ms "
          f"({100 * total_busy / total_span:.1f}%), idle {(total_span - total_busy) / n:.1f} ms, "
          f"{sum(count.values()) / n:.0f} kernels")
    print("per family (ms/step):")
    for k, v in by_fam.most_common():
        print(f"  {v / n:9.2f}  {k}")
    print(f"top {a.top} kernels (ms/step, launches/step, mean us):")
    for k, v in by_name.most_common(a.top):
        print(f"  {v / n:9.2f}  {count[k] / n:7.0f}  {1000 * v / count[k]:9.1f}  {k[:150]}")


if __name__ == "__main__":
    main()
