"""Shared pieces of the reading-task generator (build_reading.py): the seeded draw, name pools, and
thresholds for questions about numbers.

Topics return every question they can ask as (kind, answer, question). Kinds: ``fact`` (a stated
fact), ``negation`` (about something the passage says did not or does not happen), ``number`` (a
count, a year or a comparison of two) and ``trap`` (words of the passage in a false claim, or a true
claim in other words). Questions only ask what the passage itself settles.
"""

from __future__ import annotations

from random import Random

KINDS = ("fact", "negation", "number", "trap")
Q = tuple[str, bool, str]

PRONOUNS = {"she": ("she", "her", "her"), "he": ("he", "him", "his")}
FIRST = {
    "she": "Mara|Elsie|Tamsin|Orla|Greta|Nell|Ivy|Rosalind|Petra|Hilde|Agnes|Wren|Lottie|Sabine|Maud|Clemency",
    "he": "Tomas|Edwin|Jory|Alban|Casper|Milo|Ansel|Rufus|Piet|Hugo|Lionel|Fenwick|Osric|Bram|Silas|Ambrose",
}
SURNAMES = (
    "Pellow|Harrowgate|Quince|Tallis|Marchbank|Ostby|Fairwether|Dunmore|Kettley|Brisbane|Lowther|Ashdown|Crane|"
    "Vesey|Hollins|Trevick|Ambler|Nettleford|Garrow|Sallis|Penhale|Wickstead|Corby|Mallory|Thistlewood|Rudd"
)
TOWN_START = "Brack|Oster|Pell|Quill|Tarr|Wend|Lark|Dunn|Fenn|Ivel|Corr|Morrow|Kettle|Thorn|Harl|Vell|Gorse|Yarn"
TOWN_END = "ford|moor|haven|wick|mere|dene|brook|stow|combe|holt|bury|thorpe"
RIVERS = "Sorrel|Anwy|Brisk|Tollen|Merrow|Calder Run|Ivel Water|Skenning|Lathe|Oddle"
DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday"
MONTHS = "March|April|May|June|July|August|September|October|November"
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"]
NUMBER_WORDS.append("twelve")


class Draw:
    """The seeded random source, plus names never handed out twice as a passage's subject."""

    def __init__(self, rng: Random):
        self.rng = rng
        self.used: set[str] = set()

    def pick(self, pool):
        return self.rng.choice(pool.split("|") if isinstance(pool, str) else pool)

    def some(self, pool, k: int) -> list:
        return self.rng.sample(pool.split("|") if isinstance(pool, str) else pool, k)

    def num(self, lo: int, hi: int, step: int = 1) -> int:
        return self.rng.randrange(lo, hi + 1, step)

    def chance(self) -> bool:
        return self.rng.random() < 0.5

    def fresh(self, make) -> str:
        """A value of ``make()`` not handed out before (the subject of a passage)."""
        for _ in range(1000):
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value
        raise RuntimeError("name pools are exhausted")

    def town(self) -> str:
        return self.pick(TOWN_START) + self.pick(TOWN_END)

    def towns(self, k: int) -> list[str]:
        out: list[str] = []
        while len(out) < k:
            t = self.town()
            if t not in out:
                out.append(t)
        return out

    def person(self) -> tuple[str, str, tuple[str, str, str]]:
        """(full name, first name, (subject, object, possessive) pronouns)."""
        pronoun = self.pick(["she", "he"])
        first = self.pick(FIRST[pronoun])
        return f"{first} {self.pick(SURNAMES)}", first, PRONOUNS[pronoun]

    def people(self, k: int, fresh: bool = True) -> list[tuple[str, str, tuple[str, str, str]]]:
        """``k`` people with different first names and surnames; the first is new when ``fresh``."""
        out: list = []
        while len(out) < k:
            p = self.person()
            if any(p[1] == o[1] or p[0].split()[1] == o[0].split()[1] for o in out):
                continue
            if fresh and not out:
                if p[0] in self.used:
                    continue
                self.used.add(p[0])
            out.append(p)
        return out


def more_than(value: int) -> tuple[int, int]:
    """Round thresholds, one below ``value`` and one above, for 'more than N' questions; far enough
    from ``value`` that 'about {value}' still settles them."""
    step = 10 ** (len(str(value)) - 1)
    low, high = (value - 1) // step * step, (value // step + 1) * step
    margin = max(value / 10, 2)
    if value - low < margin:
        low -= step
    if high - value < margin:
        high += step
    if low <= 0:
        low = max(1, step // 2)
    assert 0 < low < value < high and value - low >= min(margin, value - 1), value
    return low, high


def years_around(d: Draw, year: int) -> tuple[int, int]:
    """(a later year, an earlier year): 'before the later one' is yes, 'before the earlier one' no."""
    return year + d.num(3, 40), year - d.num(3, 40)


def gaps_around(d: Draw, gap: int) -> tuple[int, int]:
    """(a smaller gap, a larger one) for 'more than N years' questions; ``gap`` is at least 5."""
    assert gap >= 5, gap
    return gap - d.num(2, 4), gap + d.num(2, 8)


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]
