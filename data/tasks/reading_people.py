"""Reading-task topics about people and what they run: craftspeople, companies, sports clubs,
strikes and ships (see reading_common.py for the question kinds)."""

from __future__ import annotations

from reading_common import NUMBER_WORDS, SURNAMES, Draw, Q, cap, gaps_around, more_than, years_around

TRADES = [
    ("clockmaker", "clocks", "churches and railway companies"),
    ("glassblower", "lamps", "ships' chandlers"),
    ("mapmaker", "maps", "the harbour office"),
    ("violin maker", "violins", "touring orchestras"),
    ("bookbinder", "books", "college libraries"),
    ("saddler", "saddles", "riding schools"),
    ("potter", "water jugs", "farm households"),
    ("bell founder", "bells", "village churches"),
]
NEVER_CRAFT = [
    ("signed a single piece", "sign a single piece"),
    ("took on an apprentice", "take on an apprentice"),
    ("sold work abroad", "sell work abroad"),
    ("wrote down {his} methods", "write down {his} methods"),
    ("opened a shop of {his} own", "open a shop of {his} own"),
]


def craftsperson(d: Draw) -> tuple[str, list[Q]]:
    (full, _, (he, him, his)), (mentor, mentor_first, _), (other_person, _, _) = d.people(3)
    born_town, city, other_town = d.towns(3)
    (trade, items, buyers), (other_trade, _, _) = d.some(TRADES, 2)
    never_past, never_base = (s.format(his=his) for s in d.pick(NEVER_CRAFT))
    born, age, span, count = d.num(1700, 1890), d.num(13, 19), d.num(10, 35), d.num(40, 900)
    award_year = born + age + d.num(4, span)
    award = d.pick([f"the {city} Guild Medal", f"a silver ribbon from the {city} Craft Society"])
    if d.chance():
        passage = (
            f"{full} was born in {born_town} in {born}. At the age of {age}, {he} moved to {city} to train as a "
            f"{trade} under {mentor}. Over the next {span} years {he} made {count} {items}, most of them for "
            f"{buyers}. {cap(he)} never {never_past}, although {mentor_first} often urged {him} to. In {award_year}, "
            f"{he} was given {award} for {his} work."
        )
    else:
        passage = (
            f"Born in {born_town} in {born}, {full} left home at {age} for {city}, where {mentor} taught {him} the "
            f"trade of a {trade}. In the {span} years that followed, {he} produced {count} {items}, selling most of "
            f"them to {buyers}. {cap(he)} was awarded {award} in {award_year}. Friends remembered that {he} never "
            f"{never_past}, even when {mentor_first} begged {him} to."
        )
    low, high = more_than(count)
    later, earlier = years_around(d, award_year)
    return passage, [
        ("fact", True, f"Did {full} train as a {trade}?"),
        ("fact", True, f"Was {full} born in {born_town}?"),
        ("fact", False, f"Did {full} train as a {other_trade}?"),
        ("fact", False, f"Was {full} born in {other_town}?"),
        ("fact", False, f"Did {full} learn the trade from {other_person}?"),
        ("negation", False, f"Did {full} ever {never_base}?"),
        ("negation", True, f"Did {mentor_first} want {full} to {never_base}?"),
        ("negation", True, f"Is it true that {full} never {never_past}?"),
        ("number", True, f"Was {full} older than {age - d.num(1, 3)} when {he} moved to {city}?"),
        ("number", False, f"Was {full} older than {age + d.num(1, 3)} when {he} moved to {city}?"),
        ("number", True, f"Did {full} make more than {low} {items}?"),
        ("number", False, f"Did {full} make more than {high} {items}?"),
        ("number", True, f"Was {full} given {award} before {later}?"),
        ("number", False, f"Did {full} receive {award} before {earlier}?"),
        ("trap", False, f"Was {full} born in {city}?"),
        ("trap", False, f"Did {full} move to {born_town} at the age of {age}?"),
        ("trap", False, f"Did {mentor} learn the trade of a {trade} from {full}?"),
        ("trap", True, f"Did {full} leave {born_town} as a teenager?"),
        ("trap", True, f"Did {full} learn {his} trade from {mentor}?"),
    ]


FIRMS = [
    ("Textiles", "wool blankets", "sailcloth"),
    ("Ironworks", "iron nails", "garden tools"),
    ("Ceramics", "roof tiles", "teapots"),
    ("Paper Company", "wrapping paper", "playing cards"),
    ("Optics", "reading glasses", "ship telescopes"),
    ("Foods", "pickled onions", "fruit jam"),
    ("Cycles", "children's tricycles", "delivery bicycles"),
    ("Toys", "wooden trains", "board games"),
    ("Instruments", "barometers", "kitchen scales"),
]
NEVER_FIRM = (  # past participles: 'it has never ...', 'has it ever ...?'
    "advertised on the radio|sold its products abroad|borrowed money from a bank|opened a shop of its own|"
    "made anything from plastic"
)


def company(d: Draw) -> tuple[str, list[Q]]:
    suffix, first_product, product = d.pick(FIRMS)
    (founder, _, _), (other_person, _, _) = d.people(2, fresh=False)
    firm = d.fresh(lambda: f"{d.pick(SURNAMES)} {suffix}")
    start, moved_to, other_town = d.towns(3)
    founded = d.num(1820, 1960)
    switched = founded + d.num(5, 30)
    moved = switched + d.num(3, 40)
    staff = d.num(30, 2400, 10)
    never_past = d.pick(NEVER_FIRM)
    place = d.pick("barn|cellar|boathouse|workshop|stable")
    if d.chance():
        passage = (
            f"{firm} was started in {founded} by {founder} in a rented {place} in {start}. Its first product was "
            f"{first_product}, but by {switched} the firm had switched almost entirely to {product}. In {moved} the "
            f"company moved its headquarters to {moved_to}, where it now employs {staff:,} people. {firm} has never "
            f"{never_past}; {founder.split()[1]} thought it unwise, and the family that still owns the firm agrees."
        )
    else:
        passage = (
            f"When {founder} opened {firm} in a rented {place} in {start} in {founded}, the plan was to sell "
            f"{first_product}. That plan did not last: within {switched - founded} years the business was making "
            f"mostly {product}. The firm has been based in {moved_to} since {moved} and today has {staff:,} "
            f"employees. Unusually for a company of its size, it has never {never_past}."
        )
    low, high = more_than(staff)
    later, earlier = years_around(d, founded)
    return passage, [
        ("fact", True, f"Does {firm} mostly make {product}?"),
        ("fact", True, f"Was {firm} founded by {founder}?"),
        ("fact", False, f"Was {firm} founded by {other_person}?"),
        ("fact", False, f"Is {firm} based in {other_town}?"),
        ("negation", False, f"Has {firm} ever {never_past}?"),
        ("negation", True, f"Is it true that {firm} has never {never_past}?"),
        ("number", True, f"Does {firm} employ more than {low:,} people?"),
        ("number", False, f"Does {firm} employ more than {high:,} people?"),
        ("number", True, f"Was {firm} founded before {later}?"),
        ("number", False, f"Was {firm} founded before {earlier}?"),
        ("number", True, f"Did {firm} start making {product} before it moved to {moved_to}?"),
        ("number", False, f"Did {firm} move to {moved_to} before it started making {product}?"),
        ("trap", False, f"Is {firm} still based in {start}?"),
        ("trap", False, f"Did {firm} start out selling {product}?"),
        ("trap", True, f"Did {firm} change what it mainly made after it was founded?"),
        ("trap", True, f"Has {firm} moved since it was founded?"),
    ]


SPORTS = "football|hockey|rugby|basketball|water polo|netball"
CLUB_SUFFIXES = "Rovers|Athletic|Kestrels|Harriers|Wanderers|Otters|United|Foxes"
CLUB_FOUNDERS = "railway workers|schoolteachers|dock workers|students|miners|farm labourers"
COLOURS = "green|white|blue|gold|black|red|orange|maroon"
CUPS = "Harvest Cup|County Shield|Founders' Trophy|Riverside Cup|Lantern Cup"


def sports_club(d: Draw) -> tuple[str, list[Q]]:
    town, rival_town = d.towns(2)
    club = d.fresh(lambda: f"{town} {d.pick(CLUB_SUFFIXES)}")
    rival = f"{rival_town} {d.pick(CLUB_SUFFIXES)}"
    sport, other_sport = d.some(SPORTS, 2)
    founders, other_founders = d.some(CLUB_FOUNDERS, 2)
    c1, c2, c3 = d.some(COLOURS, 3)
    ground = d.pick([f"{d.pick(SURNAMES)} Park", f"the {d.pick(SURNAMES)} Ground"])
    cup, seats, wins = d.pick(CUPS), d.num(800, 15000, 100), d.num(3, 12)
    founded = d.num(1870, 1960)
    final_year, last = d.some(range(founded + 8, 2021), 2)
    if d.chance():
        passage = (
            f"{club} is a {sport} club founded in {founded} by a group of {founders}. The team plays in {c1} and "
            f"{c2} at {ground}, which holds {seats:,} spectators. {club} has won the regional league "
            f"{NUMBER_WORDS[wins]} times, most recently in {last}. However, the club has never won the {cup}: it "
            f"reached the final in {final_year} but lost to {rival}."
        )
    else:
        passage = (
            f"Founded by {founders} in {founded}, {club} play their home {sport} matches at {ground}, a ground "
            f"with room for {seats:,} supporters. The club's {c1} and {c2} shirts have finished top of the regional "
            f"league {NUMBER_WORDS[wins]} times, the last time in {last}. The {cup} has always escaped them; their "
            f"only final, in {final_year}, ended in defeat by {rival}."
        )
    s_low, s_high = more_than(seats)
    later, earlier = years_around(d, founded)
    return passage, [
        ("fact", True, f"Does {club} play {sport}?"),
        ("fact", True, f"Does {club} play in {c1} and {c2}?"),
        ("fact", False, f"Does {club} play {other_sport}?"),
        ("fact", False, f"Was {club} founded by {other_founders}?"),
        ("fact", False, f"Does {club} play in {c1} and {c3}?"),
        ("negation", False, f"Has {club} ever won the {cup}?"),
        ("negation", False, f"Did {club} beat {rival} in the {cup} final?"),
        ("negation", True, f"Is {club} still waiting for its first {cup} win?"),
        ("number", True, f"Has {club} won the regional league more than {d.num(2, wins - 1)} times?"),
        ("number", False, f"Has {club} won the regional league more than {wins + d.num(1, 4)} times?"),
        ("number", True, f"Can {ground} hold more than {s_low:,} spectators?"),
        ("number", False, f"Can {ground} hold more than {s_high:,} spectators?"),
        ("number", True, f"Was {club} founded before {later}?"),
        ("number", False, f"Was {club} founded before {earlier}?"),
        ("number", last > final_year, f"Did {club} last win the league after its {cup} final?"),
        ("trap", False, f"Did {rival} lose the {cup} final?"),
        ("trap", False, f"Did {club} win the {cup} in {final_year}?"),
        ("trap", True, f"Did {rival} beat {club} in the {cup} final?"),
        ("trap", True, f"Has {club} finished top of the regional league more than once?"),
        ("trap", True, f"Did {club} reach the final of the {cup}?"),
    ]


STRIKE_TRADES = [
    ("Salt", "salt workers", "the salt pans"),
    ("Rope", "rope makers", "the ropewalks"),
    ("Candle", "candle makers", "the candle works"),
    ("Brick", "brick makers", "the kilns"),
    ("Ferry", "ferrymen", "the ferries"),
    ("Wool", "wool combers", "the mills"),
    ("Glass", "glassworkers", "the furnaces"),
]
OFFICES = "the harbour master|the parish priest|the town doctor|the schoolmaster|the postmistress"
ROLES = "young widow|former sailor|retired schoolteacher|foreman|ship's carpenter"


def strike(d: Draw) -> tuple[str, list[Q]]:
    (trade, workers, places), (_, other_workers, _) = d.some(STRIKE_TRADES, 2)
    town = d.fresh(lambda: f"{d.town()} {trade}")
    event = f"{town} Strike"
    (leader, _, _), (owner, _, _), (mediator, _, _) = d.people(3, fresh=False)
    office, role = d.pick(OFFICES), d.pick(ROLES)
    year, days, cut = d.num(1760, 1920), d.num(6, 60), d.num(15, 35, 5)
    final = cut - d.num(5, cut - 5, 5)
    if d.chance():
        passage = (
            f"The {event} began in {year}, when the owners of {places} cut the {workers}' wages by {cut} percent. "
            f"For {days} days no work was done. The strike was led by {leader}, a {role}, while {owner} spoke for "
            f"the owners and refused to meet the strikers in person. It ended when {mediator}, {office}, persuaded "
            f"both sides to settle on a cut of {final} percent instead."
        )
    else:
        passage = (
            f"In {year} the {workers} of {town.rsplit(' ', 1)[0]} walked out after their wages were reduced by {cut} "
            f"percent. The stoppage, remembered as the {event}, lasted {days} days. {leader}, a {role}, led the "
            f"strikers; on the other side, {owner} would not sit in the same room as them. Peace came only when "
            f"{office}, {mediator}, found a compromise: wages would fall by {final} percent rather than {cut}."
        )
    d_low, d_high = more_than(days)
    return passage, [
        ("fact", True, f"Was the {event} led by {leader}?"),
        ("fact", True, f"Did the {event} start with a cut in wages?"),
        ("fact", False, f"Were the strikers in the {event} {other_workers}?"),
        ("fact", False, f"Was {mediator} the leader of the strikers in the {event}?"),
        ("negation", False, f"Did {owner} meet the strikers in person?"),
        ("negation", True, f"Did {owner} refuse to meet the strikers?"),
        ("negation", True, f"Did the {workers} stop working during the {event}?"),
        ("number", True, f"Did the {event} last more than {d_low} days?"),
        ("number", False, f"Did the {event} last more than {d_high} days?"),
        ("number", True, "Was the final wage cut smaller than the one the owners first announced?"),
        ("number", False, f"Were wages cut by more than {final} percent in the end?"),
        ("trap", False, f"Did {owner} lead the strikers?"),
        ("trap", False, f"Were wages finally cut by {cut} percent?"),
        ("trap", True, f"Did someone outside the dispute help to end the {event}?"),
        ("trap", True, f"Did the {workers} end up with lower wages than before the strike?"),
    ]


SHIP_NAMES = (
    "Marigold Star|Grey Heron|Patience|Saltwind|Morning Lark|Second Chance|Lady Ivel|Northern Quill|Brisk Otter|"
    "Hollow Moon|Jenny Tarrow|Copper Gull|Silver Fen|Quiet Wren|Merry Pellow|Sable Crane|Iron Thistle|"
    "Wandering Kite|Old Fennick|Evening Bell|Tidecaller|Harbour Rose|Glass Swallow|Amber Tern"
)
SHIP_KINDS = "schooner|brig|fishing smack|ketch|sloop|cargo barge"
CARGOES = "timber|salt fish|wool|tea|slate|coal|oranges|grain"
SHIP_NEVER = "fitted with an engine|captured|sold abroad|damaged by fire"
FATES = "broken up for scrap|sold to a museum|sunk in a storm|turned into a houseboat"


def ship(d: Draw) -> tuple[str, list[Q]]:
    name = d.fresh(lambda: d.pick(SHIP_NAMES))
    kind, other_kind = d.some(SHIP_KINDS, 2)
    port, dest = d.towns(2)
    cargo, other_cargo = d.some(CARGOES, 2)
    (captain, _, (_, _, his)), (mate, _, _) = d.people(2, fresh=False)
    never, fate = d.pick(SHIP_NEVER), d.pick(FATES)
    year, days, years = d.num(1780, 1910), d.num(4, 90), d.num(3, 25)
    end = year + years + d.num(5, 40)
    if d.chance():
        passage = (
            f"The {name} was a {kind} launched at {port} in {year}. On her first voyage she carried {cargo} to "
            f"{dest}, a journey that took {days} days. Captain {captain} commanded her for {years} years before "
            f"handing over to {mate}, who had been {his} first mate. She was never {never}, and in {end} she was "
            f"{fate}."
        )
    else:
        passage = (
            f"Launched at {port} in {year}, the {kind} {name} made her first voyage to {dest} with a hold full of "
            f"{cargo}; the trip lasted {days} days. For {years} years she was commanded by Captain {captain}, and "
            f"after that by {mate}, formerly the first mate. In all her years at sea she was never {never}. Her "
            f"working life ended in {end}, when she was {fate}."
        )
    d_low, d_high = more_than(days)
    y_low, y_high = gaps_around(d, end - year)
    return passage, [
        ("fact", True, f"Did the {name} carry {cargo} on her first voyage?"),
        ("fact", True, f"Was the {name} launched at {port}?"),
        ("fact", False, f"Did the {name} carry {other_cargo} on her first voyage?"),
        ("fact", False, f"Was the {name} a {other_kind}?"),
        ("negation", False, f"Was the {name} ever {never}?"),
        ("negation", True, f"Is it true that the {name} was never {never}?"),
        ("number", True, f"Did the first voyage of the {name} take more than {d_low} days?"),
        ("number", False, f"Did the first voyage of the {name} take more than {d_high} days?"),
        ("number", True, f"Did Captain {captain} command the {name} for more than {years - d.num(1, 2)} years?"),
        ("number", False, f"Did Captain {captain} command the {name} for more than {years + d.num(1, 5)} years?"),
        ("number", True, f"Was the {name} still in service more than {y_low} years after she was launched?"),
        ("number", False, f"Was the {name} still in service more than {y_high} years after she was launched?"),
        ("trap", False, f"Was {mate} the first captain of the {name}?"),
        ("trap", False, f"Was the {name} launched at {dest}?"),
        ("trap", True, f"Did {mate} take command of the {name} after Captain {captain}?"),
        ("trap", True, f"Did the {name} have more than one captain?"),
    ]
