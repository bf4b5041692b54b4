"""Write ``reading.jsonl``, the embedded yes/no reading task, from invented facts.

    python data/tasks/build_reading.py [OUTPUT]     (default: reading.jsonl beside this script)

Pure standard library and deterministic: the same seed and code rewrite the file byte for byte.
Every passage is about fictional towns, people, firms, animals, machines, dishes, clubs, events,
minerals, museums or ships (reading_people.py, reading_world.py), so only the passage can answer
its question. Each split has the same number of questions for every (kind, answer) pair: yes and
no exactly balanced, and facts, negations, numbers and traps in equal shares.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the topic modules sit beside this script

from reading_common import KINDS, Draw
from reading_people import company, craftsperson, ship, sports_club, strike
from reading_world import animal, flood, machine, mineral, museum, recipe, town

SEED = 20240607
SPLITS = {"train": 160, "test": 80}
TOPICS = (town, craftsperson, company, animal, machine, recipe, sports_club, strike, flood, mineral, museum, ship)
MIN_WORDS, MAX_WORDS = 40, 120
DEFAULT_OUTPUT = Path(__file__).resolve().with_name("reading.jsonl")


def _check(passage: str, questions: list, topic) -> None:
    """What the loader's schema cannot see: passage length, question shape, every (kind, answer)."""
    words = len(passage.split())
    assert MIN_WORDS <= words <= MAX_WORDS, (topic.__name__, words, passage)
    assert "{" not in passage and "  " not in passage, passage
    for kind, answer, question in questions:
        assert kind in KINDS and isinstance(answer, bool), (kind, answer)
        assert question.endswith("?") and question[0].isupper() and "{" not in question, question
    have = {(k, a) for k, a, _ in questions}
    assert have == {(k, a) for k in KINDS for a in (True, False)}, (topic.__name__, sorted(have))


def build(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    draw = Draw(rng)
    total = sum(SPLITS.values())
    splits = ["test" if i % 3 == 2 else "train" for i in range(total)]  # interleaved: topics mix in both
    assert Counter(splits) == SPLITS
    pairs = [(k, a) for k in KINDS for a in (True, False)]
    wanted = {s: pairs * (n // len(pairs)) for s, n in SPLITS.items()}
    for seq in wanted.values():
        rng.shuffle(seq)
    # each round of len(TOPICS) items visits every topic once, in a fresh order
    topics = [t for _ in range(total // len(TOPICS)) for t in rng.sample(TOPICS, len(TOPICS))]
    items = []
    for i, (split, topic) in enumerate(zip(splits, topics)):
        passage, questions = topic(draw)
        _check(passage, questions, topic)
        kind, answer = wanted[split].pop()
        question = rng.choice([q for k, a, q in questions if (k, a) == (kind, answer)])
        items.append({"id": i, "passage": passage, "question": question, "answer": answer, "split": split})
    assert len({it["passage"] for it in items}) == total, "two passages are the same"
    return items


def write(items: list[dict], path: Path) -> None:
    with Path(path).open("w", encoding="utf-8", newline="\n") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else DEFAULT_OUTPUT
    items = build()
    write(items, out)
    counts = Counter((it["split"], it["answer"]) for it in items)
    print(f"wrote {len(items)} items to {out}: " + ", ".join(f"{s}/{a}: {n}" for (s, a), n in sorted(counts.items())))


if __name__ == "__main__":
    main(sys.argv[1:])
