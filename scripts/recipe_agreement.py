"""How alike the models of one opponent recipe explain (docs/STRATEGY.md, "Models of a recipe").

For each pair of models (the pipeline's proxies and twins, the evaluation panels' bots, and
optionally models trained here the way a team would train them), the share of sample words
whose first hint from the column's model is among the row's model's first 30 hints (the
guesser's reverse lookup depth, `strategy.proxy_depth`): how often the guesser reading the
row's lists finds the column's opening hint at all.

    poetry run python scripts/recipe_agreement.py --data data/work/<key> --recipe notebook_sg10
    poetry run python scripts/recipe_agreement.py --data data/work/<key> --recipe notebook_sg10 \\
        --team-seeds 7 8 --corpus ../shared/corpus/20news-19997.tar.gz

`--team-seeds` trains, per seed, the recipe as a team running the course's notebook would:
fastText's default 12 threads, on the documents concatenated newsgroup by newsgroup (as
`Path.rglob` walks the extracted archive; the newsgroups and the documents within each in
a seeded order, standing for a filesystem's).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from hatbot.game.recipes import RECIPES
from hatbot.pipeline.artifact import proxy_hints
from hatbot.pipeline.train import Job, Trained, run_jobs

DEPTH = 30
SAMPLE = 1000


def models_of(data: Path, recipe: str) -> dict[str, Path]:
    """The trained exports of `recipe` under the data folder, named by their document order."""
    found: dict[str, Path] = {}
    for job in sorted(data.glob(f"fasttext/*-{recipe}-*/job.json")):
        if (job.parent / "done.json").is_file():
            corpus = Path(json.loads(job.read_text())["corpus"]).name
            order = re.search(r"shuffled-(\d+)", corpus)
            found[f"shuffled {order.group(1)}" if order else "in order"] = job.parent
    for done in sorted(data.glob(f"panel-seed*/{recipe}/done.json")):
        found[f"panel {done.parent.parent.name.removeprefix('panel-')}"] = done.parent
    for done in sorted(data.glob(f"teams/{recipe}-*/done.json")):
        found[f"team {done.parent.name.rsplit('-', 1)[1]}"] = done.parent
    kinds = ["in", "shuffled", "panel", "team"]
    return dict(sorted(found.items(), key=lambda item: (kinds.index(item[0].split()[0]), item[0])))


def train_teams(data: Path, corpus: Path, recipe: str, seeds: list[int]) -> None:
    """Train the recipe per seed as a notebook team would (module docstring)."""
    # The recipe's corpus (raw.txt or clean.txt) holds one document per line in
    # `corpus.iter_documents`'s order: by member name.
    with tarfile.open(corpus, "r:*") as archive:
        groups = [
            m.name.split("/")[-2] for m in sorted(archive, key=lambda m: m.name) if m.isfile()
        ]
    source = data / f"{RECIPES[recipe].corpus}.txt"
    documents = source.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(groups) != len(documents):
        sys.exit(f"{source} has {len(documents)} documents, the archive {len(groups)}")
    jobs = []
    for seed in seeds:
        out = data / "teams" / f"{recipe}-{seed}"
        if (out / "done.json").is_file():
            continue
        rng = random.Random(seed)
        by_group: dict[str, list[str]] = {}
        for group, document in zip(groups, documents, strict=True):
            by_group.setdefault(group, []).append(document)
        order = sorted(by_group)
        rng.shuffle(order)
        text = data / "teams" / f"{source.stem}.grouped-{seed}.txt"
        text.parent.mkdir(parents=True, exist_ok=True)
        with text.open("w", encoding="utf-8") as f:
            for group in order:
                rng.shuffle(by_group[group])
                f.writelines(by_group[group])
        args = RECIPES[recipe].fasttext_args({"thread": 12})
        jobs.append(Job(text, args, out, name=f"team {recipe} {seed}"))
    run_jobs(jobs, parallel=1)


def first_hints(trained: Trained, targets: list[str]) -> dict[str, list[str]]:
    """Each target's first DEPTH hints from the model: the lists the artifact gives the
    guesser (`artifact.proxy_hints`, cleaned as the host cleans them)."""
    ids = {w: i for i, w in enumerate(trained.words)}
    own = replace(trained, queries=trained.vectors[[ids[t] for t in targets]])
    hints, extra = proxy_hints(own, targets, np.arange(len(targets)), DEPTH)
    names = targets + extra
    return {t: [names[i] for i in row if i >= 0] for t, row in zip(targets, hints, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="data/work/<key>")
    parser.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    parser.add_argument("--team-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--corpus", type=Path, help="the archive (for --team-seeds)")
    args = parser.parse_args()
    if args.team_seeds:
        if args.corpus is None:
            parser.error("--team-seeds needs --corpus")
        train_teams(args.data, args.corpus, args.recipe, args.team_seeds)
    models = {
        name: Trained.load(folder) for name, folder in models_of(args.data, args.recipe).items()
    }
    if len(models) < 2:
        sys.exit(f"fewer than two trained models of {args.recipe} under {args.data}")
    shared = set.intersection(*(set(m.words) for m in models.values()))
    first = next(iter(models.values()))
    pool = sorted(
        w
        for w, c in zip(first.words, first.counts, strict=True)
        if 20 <= c <= 400 and w in shared and re.fullmatch("[a-z]{4,}", w)
    )
    targets = random.Random(0).sample(pool, min(SAMPLE, len(pool)))
    lists = {name: first_hints(m, targets) for name, m in models.items()}
    names = list(lists)
    print(f"{args.recipe}, {len(targets)} words: the column's first hint in the row's {DEPTH}")
    print()
    print("| model | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in names:
        found = {
            col: np.mean([lists[col][t][0] in lists[row][t] for t in targets if lists[col][t]])
            for col in names
        }
        cells = ["" if col == row else f"{found[col]:.2f}" for col in names]
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
