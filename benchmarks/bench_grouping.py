"""How well intent groups recover the intents behind simulated traffic, and what the old split leaked.

    .venv/bin/python benchmarks/bench_grouping.py              # 5,000 requests, seeds 0 1 2
    .venv/bin/python benchmarks/bench_grouping.py --n 20000

Traffic: ``streams.vocabulary.surface_form`` (templates, modifiers, case, 8% typos) over its base
intents, so the true intent of every row is known. Prints, per seed: intents, groups, groups that
merged two intents (must be 0), rows outside their intent's main group, and the share of intents
whose rows span more than one split under the old per-prompt hash and under the groups.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    from schemas.text import normalise_prompt
    from streams.vocabulary import INTENTS, surface_form, zipf_weights
    from trainer.grouping import IntentGroups, bucket_split

    print("| seed | rows | intents | groups | merged groups | rows outside main group | "
          "intents across splits: old hash | intents across splits: groups |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        rng = random.Random(seed)
        weights = zipf_weights(len(INTENTS))
        rows = []
        for _ in range(args.n):
            intent = rng.choices(INTENTS, weights)[0]
            rows.append((intent, normalise_prompt(surface_form(intent, rng))))
        groups = IntentGroups(norm for _, norm in rows)
        intents_of: dict[str, set[str]] = defaultdict(set)
        main_group: dict[str, Counter] = defaultdict(Counter)
        old_splits: dict[str, set[str]] = defaultdict(set)
        new_splits: dict[str, set[str]] = defaultdict(set)
        for intent, norm in rows:
            label = groups.label(norm)
            intents_of[label].add(intent)
            main_group[intent][label] += 1
            old_splits[intent].add(bucket_split(norm, 0.1, 0.1))
            new_splits[intent].add(groups.split(norm, 0.1, 0.1))
        merged = sum(len(v) > 1 for v in intents_of.values())
        stray = sum(sum(c.values()) - max(c.values()) for c in main_group.values())
        seen = len(main_group)
        old = sum(len(v) > 1 for v in old_splits.values()) / seen
        new = sum(len(v) > 1 for v in new_splits.values()) / seen
        print(f"| {seed} | {args.n} | {seen} | {groups.count} | {merged} | {stray} ({stray / args.n:.1%}) | "
              f"{old:.0%} | {new:.0%} |")


if __name__ == "__main__":
    main()
