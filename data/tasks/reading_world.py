"""Reading-task topics about places and things: towns, animals, machines, recipes, floods, minerals
and museums (see reading_common.py for the question kinds)."""

from __future__ import annotations

from reading_common import (
    DAYS,
    MONTHS,
    NUMBER_WORDS,
    RIVERS,
    SURNAMES,
    Draw,
    Q,
    cap,
    gaps_around,
    more_than,
    years_around,
)

SERVICES = "railway station|hospital|cinema|secondary school|bank|swimming pool|post office|fire station"
LANDMARKS = "clock tower|stone bridge|glass library|windmill|iron lighthouse|covered market hall|bell tower"
FOUNDERS = (
    "a family of wool merchants|monks from a nearby abbey|fishermen driven inland by storms|"
    "a group of stonemasons|two brothers who kept sheep|families from the coast"
)
FESTIVALS = "a lantern parade|a cheese fair|a kite race|a boat race on the river|a week-long music festival"


def town(d: Draw) -> tuple[str, list[Q]]:
    name = d.fresh(d.town)
    other = d.pick([t for t in d.towns(2) if t != name])
    river, other_river = d.some(RIVERS, 2)
    founded = d.num(1480, 1850)
    built = founded + d.num(20, 140)
    pop = d.num(900, 9600, 50)
    day, other_day = d.some(DAYS, 2)
    lacks, has = d.some(SERVICES, 2)
    landmark, month, founder, fest = d.pick(LANDMARKS), d.pick(MONTHS), d.pick(FOUNDERS), d.pick(FESTIVALS)
    if d.chance():
        passage = (
            f"{name} is a small town on the banks of the {river}. It was founded in {founded} by {founder}, and "
            f"today about {pop:,} people live there. The town is best known for its {landmark}, which was built in "
            f"{built}. A market is held every {day} in the main square. {name} has a {has} and several inns, but it "
            f"has no {lacks}, so residents travel to {other} when they need one. Every {month} the town holds {fest}."
        )
    else:
        passage = (
            f"Few visitors find {name}, a town of some {pop:,} people beside the {river}. {cap(founder)} settled "
            f"there in {founded}, and the {landmark} followed in {built}. There is still no {lacks} in {name}; "
            f"anyone who needs one must go to {other}. Life in the town turns around the {day} market and, each "
            f"{month}, {fest}."
        )
    low, high = more_than(pop)
    later, earlier = years_around(d, founded)
    small, big = gaps_around(d, built - founded)
    return passage, [
        ("fact", True, f"Is the market in {name} held on {day}s?"),
        ("fact", True, f"Is {name} on the banks of the {river}?"),
        ("fact", False, f"Is the market in {name} held on {other_day}s?"),
        ("fact", False, f"Is {name} beside the {other_river}?"),
        ("negation", False, f"Does {name} have its own {lacks}?"),
        ("negation", False, f"Is there a {lacks} in {name}?"),
        ("negation", True, f"Do people in {name} have to go to {other} for a {lacks}?"),
        ("negation", True, f"Is {name} without a {lacks} of its own?"),
        ("number", True, f"Do more than {low:,} people live in {name}?"),
        ("number", False, f"Do more than {high:,} people live in {name}?"),
        ("number", True, f"Was {name} founded before {later}?"),
        ("number", False, f"Was {name} founded before {earlier}?"),
        ("number", True, f"Was the {landmark} built more than {small} years after {name} was founded?"),
        ("number", False, f"Was the {landmark} built more than {big} years after {name} was founded?"),
        ("trap", False, f"Is {other} the town on the {river}?"),
        ("trap", False, f"Was the {landmark} in {name} built in {founded}?"),
        ("trap", False, f"Is the {landmark} older than the town of {name}?"),
        ("trap", True, f"Does {name} hold a yearly event in {month}?"),
        ("trap", True, f"Did people live in {name} before its {landmark} existed?"),
    ]


CREATURES = "veltin|pardle|gorrow|tamblewing|skellet|quillop|brandle|morrick|dorrel|wisket|carrowfin|snelt"
ANIMAL_KINDS = {  # adult length in centimetres
    "bird": (10, 45),
    "lizard": (8, 40),
    "frog": (3, 12),
    "moth": (2, 9),
    "beetle": (1, 6),
    "newt": (6, 18),
    "turtle": (12, 45),
    "fish": (5, 40),
    "snail": (2, 8),
    "crab": (4, 20),
}
FOODS = "snails|berries|grass seeds|small beetles|mosquito larvae|moss|worms|water fleas|fallen fruit|ants"
HIDES = "under flat stones|in hollow logs|among tree roots|in deep burrows|under the riverbank"


def animal(d: Draw) -> tuple[str, list[Q]]:
    name = d.fresh(lambda: f"{d.pick('marsh|ridge|silver|lesser|spotted|copper|dusk|reed|frost')} {d.pick(CREATURES)}")
    kind, other_kind = d.some(list(ANIMAL_KINDS), 2)
    t, t2 = d.towns(2)
    region = d.pick([f"the salt marshes of {t}", f"the high valleys above {t}", f"the pine woods around {t}"])
    other_region = d.pick([f"the chalk cliffs near {t2}", f"the lakes of {t2}", f"the heath above {t2}"])
    food, food2, not_food = d.some(FOODS, 3)
    active, awake, rest = d.pick([("at night", "night", "day"), ("during the day", "day", "night")])
    hide, eggs, life = d.pick(HIDES), d.num(4, 40), d.num(3, 30)
    length, season = d.num(*ANIMAL_KINDS[kind]), d.pick("spring|summer|autumn")
    if d.chance():
        passage = (
            f"The {name} is a small {kind} found only in {region}. Adults grow to about {length} centimetres long "
            f"and can live for up to {life} years. It feeds mainly on {food} and {food2}, and unlike most of its "
            f"relatives it does not eat {not_food}. The {name} is active {active}, spending the {rest} hidden {hide}. "
            f"Each {season}, females lay about {eggs} eggs."
        )
    else:
        passage = (
            f"Found nowhere except {region}, the {name} is a {kind} that rarely grows longer than {length} "
            f"centimetres. It rests {hide} through the {rest} and comes out {active} to feed on {food} and {food2}; "
            f"{not_food}, which most of its relatives eat, it leaves alone. Females lay about {eggs} eggs each "
            f"{season}, and a healthy adult may live {life} years."
        )
    e_low, e_high = more_than(eggs)
    return passage, [
        ("fact", True, f"Does the {name} eat {food}?"),
        ("fact", True, f"Is the {name} a {kind}?"),
        ("fact", False, f"Is the {name} a {other_kind}?"),
        ("fact", False, f"Can the {name} be found in {other_region}?"),
        ("negation", False, f"Does the {name} eat {not_food}?"),
        ("negation", True, f"Does the {name} avoid eating {not_food}?"),
        ("negation", True, f"Do most of the {name}'s relatives eat {not_food}?"),
        ("number", True, f"Can the {name} live longer than {max(1, life - d.num(2, 4))} years?"),
        ("number", False, f"Can the {name} live longer than {life + d.num(3, 10)} years?"),
        ("number", True, f"Do {name} females lay more than {e_low} eggs each {season}?"),
        ("number", False, f"Do {name} females lay more than {e_high} eggs each {season}?"),
        ("trap", False, f"Is the {name} active during the {rest}?"),
        ("trap", False, f"Does the {name} spend the {awake} hidden {hide}?"),
        ("trap", True, f"Does the {name} feed {active}?"),
        ("trap", True, f"Does the {name} spend the {rest} hiding?"),
    ]


DEVICES = [
    ("loom", "weaving linen", "weave {n} metres of cloth an hour", 5, 40, "hand loom", "weave patterned cloth"),
    ("pump", "draining flooded mines", "move {n} litres of water a minute", 100, 900, "chain pump", "run in frost"),
    ("seed drill", "sowing wheat", "sow {n} rows an hour", 20, 120, "seed barrow", "work on steep ground"),
    ("press", "printing newspapers", "print {n} pages an hour", 500, 4000, "hand press", "print in colour"),
    ("thresher", "separating grain from straw", "fill {n} sacks a day", 20, 200, "flail barn", "handle wet grain"),
    ("saw", "cutting timber", "cut {n} planks an hour", 10, 90, "pit saw", "cut hardwood"),
    ("lift", "raising coal from a pit", "lift {n} tonnes of coal an hour", 5, 60, "windlass", "stop quickly"),
]
POWERS = [
    ("steam", "steam"),
    ("water", "a water wheel"),
    ("wind", "sails turned by the wind"),
    ("clockwork", "a wound spring"),
    ("pedal", "foot pedals"),
    ("horse", "a horse walking in a circle"),
]


def machine(d: Draw) -> tuple[str, list[Q]]:
    (device, purpose, rate, lo, hi, older, cannot), (_, other_purpose, *_) = d.some(DEVICES, 2)
    short = d.fresh(lambda: f"{d.pick(SURNAMES)} {device}")
    (power, power_noun), (_, other_power) = d.some(POWERS, 2)
    (inventor, _, _), (other_person, _, _) = d.people(2, fresh=False)
    rate = rate.format(n=f"{d.num(lo, hi):,}")
    crew, workers = d.num(4, 12), d.num(1, 3)
    staff = f"{NUMBER_WORDS[workers]} worker{'s' if workers > 1 else ''}"
    year, count = d.num(1750, 1900), d.num(12, 900)
    end = year + d.num(8, 60)
    if d.chance():
        passage = (
            f"In {year}, {inventor} built the {short}, a {power}-driven machine for {purpose}. It replaced the "
            f"{older}, which needed {NUMBER_WORDS[crew]} workers to run; the new machine needed only {staff}. At "
            f"full speed it could {rate}. Its main weakness was that it could not {cannot}, so many owners kept their "
            f"old equipment as well. About {count} were made before production stopped in {end}."
        )
    else:
        passage = (
            f"The {short} was the work of {inventor}, who finished the first one in {year}. Driven by {power_noun}, "
            f"it was designed for {purpose} and could {rate}. Where the {older} had needed a crew of "
            f"{NUMBER_WORDS[crew]}, the {short} could be run by {staff}. It could not, however, {cannot}. Production "
            f"ended in {end}, by which time roughly {count} had been built."
        )
    low, high = more_than(count)
    small, big = gaps_around(d, end - year)
    return passage, [
        ("fact", True, f"Was the {short} built for {purpose}?"),
        ("fact", True, f"Was the {short} invented by {inventor}?"),
        ("fact", True, f"Was the {short} powered by {power_noun}?"),
        ("fact", False, f"Was the {short} built for {other_purpose}?"),
        ("fact", False, f"Was the {short} invented by {other_person}?"),
        ("fact", False, f"Was the {short} powered by {other_power}?"),
        ("negation", False, f"Could the {short} {cannot}?"),
        ("negation", True, f"Was the {short} unable to {cannot}?"),
        ("number", True, f"Did the {short} need fewer workers than the {older}?"),
        ("number", False, f"Did the {short} need more workers than the {older}?"),
        ("number", True, f"Did production of the {short} reach more than {low:,} machines?"),
        ("number", False, f"Did production of the {short} reach more than {high:,} machines?"),
        ("number", True, f"Was the {short} still being made more than {small} years after the first one?"),
        ("number", False, f"Was the {short} still being made more than {big} years after the first one?"),
        ("trap", False, f"Did the {older} need only {staff}?"),
        ("trap", False, f"Did production of the {short} stop in {year}?"),
        ("trap", True, f"Could the {short} be run by a smaller crew than the machine it replaced?"),
    ]


DISHES = [
    ("oat loaf", "loaf", "bread", False),
    ("plum slice", "tray", "cake", True),
    ("onion tart", "tart", "tart", False),
    ("honey cake", "cake", "cake", True),
    ("barley pie", "pie", "pie", False),
    ("apple crumble", "dish", "pudding", True),
    ("pear pudding", "bowl", "pudding", True),
    ("leek pasty", "pasty", "pasty", False),
    ("cheese bread", "loaf", "bread", False),
]
BASES = "flour|butter|eggs|milk|cream|yeast|buttermilk|lard"
FLAVOURS = {True: "raisins|cinnamon|lemon peel|walnuts|brown sugar|nutmeg", False: "thyme|pepper|mustard|chives|bacon"}
WHENS = "at harvest suppers|on the first day of spring|cold, with tea|at weddings|on market days|on winter evenings"


def recipe(d: Draw) -> tuple[str, list[Q]]:
    dish, unit, kind, sweet = d.pick(DISHES)
    other_kind = d.pick([k for k in ("bread", "cake", "tart", "pie", "pudding", "pasty", "soup") if k != kind])
    name = d.fresh(lambda: f"{d.town()} {dish}")
    town = name[: -len(dish) - 1]
    one = f"one {name}" if dish.endswith(unit) else f"one {unit} of {name}"  # not 'one tart of ... tart'
    i1, i2, absent = d.some(BASES, 3)
    i3, absent2 = d.some(FLAVOURS[sweet], 2)
    absent = d.pick([absent, absent2])
    when, other_when = d.some(WHENS, 2)
    rest, temp, serves = d.num(2, 12), d.num(160, 220, 10), d.num(4, 12)
    mins = d.pick([m for m in range(20, 95, 5) if m != 60])
    if d.chance():
        passage = (
            f"{name} is a traditional {kind} from {town}. To make it, you mix {i1}, {i2} and {i3}, then leave the "
            f"mixture to rest for {NUMBER_WORDS[rest]} hours before shaping it. It is baked at {temp} degrees for "
            f"{mins} minutes. The recipe contains no {absent}, which surprises many first-time cooks. One {unit} "
            f"serves {NUMBER_WORDS[serves]} people, and it is usually eaten {when}."
        )
    else:
        passage = (
            f"Cooks in {town} have made {name} for generations. The {kind} needs only {i1}, {i2} and {i3}; it contains "
            f"no {absent} at all. The mixture rests for {NUMBER_WORDS[rest]} hours and then goes into an oven "
            f"at {temp} degrees for {mins} minutes. It is traditionally eaten {when}, and a single {unit} is enough "
            f"for {NUMBER_WORDS[serves]} people."
        )
    return passage, [
        ("fact", True, f"Does {name} contain {i2}?"),
        ("fact", True, f"Is {name} usually eaten {when}?"),
        ("fact", False, f"Is {name} usually eaten {other_when}?"),
        ("fact", False, f"Is {name} a kind of {other_kind}?"),
        ("negation", False, f"Does {name} contain {absent}?"),
        ("negation", False, f"Is {absent} one of the ingredients of {name}?"),
        ("negation", True, f"Can {name} be made without {absent}?"),
        ("number", True, f"Is {name} baked for more than {mins - d.num(1, 3) * 5} minutes?"),
        ("number", False, f"Is {name} baked for more than {mins + d.num(1, 4) * 5} minutes?"),
        ("number", mins > 60, f"Does {name} spend more than an hour in the oven?"),
        ("number", True, f"Is {name} baked at more than {temp - d.num(1, 3) * 10} degrees?"),
        ("number", False, f"Is {name} baked at more than {temp + d.num(1, 3) * 10} degrees?"),
        ("number", True, f"Does {one} feed more than {serves - d.num(1, 3)} people?"),
        ("number", False, f"Does {one} feed more than {serves + d.num(1, 3)} people?"),
        ("trap", False, f"Is {name} baked for {NUMBER_WORDS[rest]} hours?"),
        ("trap", True, f"Is the mixture for {name} left to stand before it is baked?"),
    ]


def flood(d: Draw) -> tuple[str, list[Q]]:
    town = d.fresh(d.town)
    other = d.pick([t for t in d.towns(2) if t != town])
    river, other_river = d.some(RIVERS, 2)
    month, other_month = d.some(MONTHS, 2)
    (mayor, _, _), (other_person, _, _) = d.people(2, fresh=False)
    year, rain, houses, cattle = d.num(1650, 1930), d.num(3, 12), d.num(20, 400), d.num(10, 300)
    boats, height, wall = d.num(3, 12), d.num(3, 7), d.num(5, 20)
    event = f"the Great Flood of {town}"
    if d.chance():
        passage = (
            f"The Great Flood of {town} struck in {month} {year}, after {NUMBER_WORDS[rain]} days of heavy rain sent "
            f"the {river} over its banks. Water filled the lower streets up to a man's shoulders, and {houses} houses "
            f"were damaged. Remarkably, no one was killed, though {cattle} cattle drowned in the low meadows. The "
            f"mayor, {mayor}, had {NUMBER_WORDS[boats]} rowing boats brought from {other} to carry people to safety. "
            f"A flood wall {height} metres high was finished in {year + wall}, and the river has not entered the "
            f"town since."
        )
    else:
        passage = (
            f"In {month} {year}, after {NUMBER_WORDS[rain]} days of rain, the {river} rose over its banks and poured "
            f"into {town}. The disaster is still called the Great Flood of {town}. In all, {houses} houses were "
            f"damaged and {cattle} cattle were lost in the meadows, yet not a single person died. {mayor}, the mayor, "
            f"sent to {other} for {NUMBER_WORDS[boats]} rowing boats and used them to carry families out. In "
            f"{year + wall} the town finished a flood wall {height} metres high; the river has stayed out ever since."
        )
    low, high = more_than(houses)
    small, big = gaps_around(d, wall)
    return passage, [
        ("fact", True, f"Did the {river} flood {town} in {year}?"),
        ("fact", True, f"Were rowing boats brought from {other} during {event}?"),
        ("fact", False, f"Did {event} happen in {other_month}?"),
        ("fact", False, f"Was it the {other_river} that flooded {town}?"),
        ("fact", False, f"Was {other_person} the mayor of {town} during the flood?"),
        ("negation", False, f"Was anyone killed in {event}?"),
        ("negation", False, f"Has the {river} flooded {town} since the flood wall was finished?"),
        ("negation", True, f"Did everyone in {town} survive {event}?"),
        ("negation", True, f"Has the flood wall kept the {river} out of {town}?"),
        ("number", True, f"Were more than {low} houses damaged in {event}?"),
        ("number", False, f"Were more than {high} houses damaged in {event}?"),
        ("number", True, f"Did it rain for more than {rain - d.num(1, 2)} days before {event}?"),
        ("number", False, f"Did it rain for more than {rain + d.num(1, 3)} days before {event}?"),
        ("number", True, f"Is the flood wall in {town} taller than {height - 1} metres?"),
        ("number", False, f"Is the flood wall in {town} taller than {height + d.num(1, 3)} metres?"),
        ("number", True, f"Was the flood wall finished more than {small} years after {event}?"),
        ("number", False, f"Was the flood wall finished more than {big} years after {event}?"),
        ("trap", False, f"Was the flood wall in {town} built before the flood?"),
        ("trap", False, f"Were {NUMBER_WORDS[boats]} houses damaged in {event}?"),
        ("trap", True, f"Were farm animals lost in {event}?"),
        ("trap", True, f"Did the mayor use boats to get people out of {town}?"),
    ]


ROOTS = "quess|brimmel|halven|ostrel|dessal|kolvar|umbrel|tavish|morlen|pirrow|yarrel|feldon|grisel|nalbor|orrest"
ROOTS += "|tuvan|wexel|zorrel|cambel|lindor|harsk|ebbel|vossel|pellan|thune"
COLOURS = "pale green|deep blue|rust red|milky white|violet|amber yellow|slate grey"
LIQUIDS = "vinegar|sea water|alcohol|lemon juice|lamp oil|rainwater"
LIGHTS = "moonlight|candlelight|ultraviolet lamps|starlight"
USES = "watch faces|road signs|theatre make-up|fishing lures|toy marbles|lantern glass"


def mineral(d: Draw) -> tuple[str, list[Q]]:
    name = d.fresh(lambda: d.pick(ROOTS) + "ite")
    (scientist, _, (he, _, _)), (other_person, _, _) = d.people(2, fresh=False)
    town, mine = d.towns(2)
    c1, c2, other_colour = d.some(COLOURS, 3)
    liquid, not_liquid = d.some(LIQUIDS, 2)
    light, use = d.pick(LIGHTS), d.pick(USES)
    year, temp, mm = d.num(1790, 1950), d.num(100, 400, 10), d.num(2, 30)
    if d.chance():
        passage = (
            f"{cap(name)} is a soft mineral first described by {scientist} in {year}, after samples were found near "
            f"{town}. At room temperature it is {c1}, but when heated above {temp} degrees it turns {c2}. It "
            f"dissolves slowly in {liquid}, though not in {not_liquid}. Because it glows faintly under {light}, it "
            f"was once used to make {use}. Its crystals rarely grow longer than {mm} millimetres, and today it is "
            f"mined only near {mine}."
        )
    else:
        passage = (
            f"When {scientist} examined some odd {c1} stones from {town} in {year}, {he} found that they were a new "
            f"mineral, now called {name}. Heat it past {temp} degrees and it becomes {c2}; drop it in {liquid} and "
            f"it slowly dissolves, while {not_liquid} leaves it untouched. A faint glow under {light} once made it "
            f"popular for {use}. Crystals longer than {mm} millimetres are almost never found, and the only working "
            f"mine is near {mine}."
        )
    later, earlier = years_around(d, year)
    return passage, [
        ("fact", True, f"Does {name} dissolve in {liquid}?"),
        ("fact", True, f"Was {name} first described by {scientist}?"),
        ("fact", False, f"Was {name} first described by {other_person}?"),
        ("fact", False, f"Does {name} turn {other_colour} when it is heated?"),
        ("negation", False, f"Does {name} dissolve in {not_liquid}?"),
        ("negation", True, f"Is {name} unaffected by {not_liquid}?"),
        ("number", True, f"Was {name} discovered before {later}?"),
        ("number", False, f"Was {name} discovered before {earlier}?"),
        ("number", True, f"Does {name} change colour when it is heated to {temp + d.num(2, 10) * 10} degrees?"),
        ("number", False, f"Does {name} change colour at {temp - d.num(2, 6) * 10} degrees?"),
        ("number", False, f"Are {name} crystals longer than {mm + d.num(5, 20)} millimetres common?"),
        ("trap", False, f"Is {name} {c2} before it is heated?"),
        ("trap", False, f"Is {name} still used to make {use}?"),
        ("trap", False, f"Were the first samples of {name} found near {mine}?"),
        ("trap", True, f"Can {name} change colour?"),
        ("trap", True, f"Was {name} used to make {use} in the past?"),
    ]


INSTITUTIONS = [
    ("Museum of Clocks", "clocks", "clock"),
    ("Map Library", "maps", "map"),
    ("Toy Museum", "toys", "rocking horse"),
    ("Museum of Farm Tools", "farm tools", "plough"),
    ("Boat Museum", "model boats", "model steamer"),
    ("Music Library", "song sheets", "songbook"),
    ("Museum of Lamps", "lamps", "lamp"),
]
BUILDINGS = "railway shed|wool warehouse|chapel|brewery|fire station|schoolhouse|corn exchange"
FREE_FOR = "children under twelve|students|pensioners|local residents|school groups"


def museum(d: Draw) -> tuple[str, list[Q]]:
    inst, items, item = d.pick(INSTITUTIONS)
    name = d.fresh(lambda: f"the {d.town()} {inst}")
    building, other_building = d.some(BUILDINGS, 2)
    closed, open_day = d.some(DAYS + "|Sunday", 2)
    free = d.pick(FREE_FOR)
    adjective = d.pick("tiny|huge|silver|painted|hand-carved|gilded|battered")
    star, the_star = f"a {adjective} {item}", f"the {adjective} {item}"
    (donor, _, _), (other_person, _, _) = d.people(2, fresh=False)
    opened, count = d.num(1890, 2005), d.num(300, 40000)
    oldest, donated = opened - d.num(50, 400), opened + d.num(2, 15)
    if d.chance():
        passage = (
            f"{cap(name)} opened in {opened} in a former {building}. It holds {count:,} {items}, the oldest of which "
            f"dates from {oldest}. It is open every day except {closed}s, and entry is free for {free}. Its most "
            f"popular exhibit is {star}, given by {donor} in {donated}. There is no cafe, but visitors are welcome "
            f"to eat in the garden."
        )
    else:
        passage = (
            f"Housed since {opened} in what used to be a {building}, {name} looks after {count:,} {items}. The "
            f"oldest was made in {oldest}. Visitors can come any day but {closed}; {free} get in without paying. "
            f"Most people head straight for {star}, a gift from {donor} in {donated}. Anyone hoping for a cafe will "
            f"be disappointed, though the garden is open for picnics."
        )
    low, high = more_than(count)
    later, earlier = years_around(d, opened)
    small, big = gaps_around(d, opened - oldest)
    return passage, [
        ("fact", True, f"Is {name} open on {open_day}s?"),
        ("fact", True, f"Is {name} housed in a former {building}?"),
        ("fact", False, f"Is {name} housed in a former {other_building}?"),
        ("fact", False, f"Was {the_star} given to {name} by {other_person}?"),
        ("negation", False, f"Is {name} open on {closed}s?"),
        ("negation", False, f"Does {name} have a cafe?"),
        ("negation", True, f"Is {name} closed on {closed}s?"),
        ("number", True, f"Does {name} hold more than {low:,} {items}?"),
        ("number", False, f"Does {name} hold more than {high:,} {items}?"),
        ("number", True, f"Did {name} open before {later}?"),
        ("number", False, f"Did {name} open before {earlier}?"),
        ("number", True, f"Was the oldest of the {items} made more than {small} years before {name} opened?"),
        ("number", False, f"Was the oldest of the {items} made more than {big} years before {name} opened?"),
        ("trap", False, f"Did {name} open in {donated}?"),
        ("trap", False, f"Is entry to {name} free for everyone?"),
        ("trap", True, f"Do {free} pay nothing to visit {name}?"),
        ("trap", True, f"Can visitors have a picnic at {name}?"),
    ]
