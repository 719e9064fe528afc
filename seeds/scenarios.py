"""Seeded memory-dynamics scenarios (issue 4) with known evidence: no network, no model, no LLM.

Five generators, each a pure function of its arguments (same seed and sizes -> the same
texts, ids and order, on any machine; numpy's PCG64 drives every choice):

* :func:`slot_stories` (scenario A): short episodes with slots (who, did what, to which
  object, where, when). For every *target* story there are four hard negatives that share
  all but one identifying slot (another verb, another colour of the same object, another
  object of the same colour, another person with the same first name). Queries are
  *partial cues*: they name the identifying slots and leave out place and time; the cue
  types are ``direct`` (the story's own words), ``paraphrase`` (a synonym for the verb)
  and ``fragment`` (surname, object and verb only, as a keyword list).
* :func:`changing_facts` (scenario C): user preferences and service settings whose value
  changes over up to four eras; each change has a valid time. The caller decides how to
  store them (a new version of one id, or one memory per statement).
* :func:`near_collisions` (scenario D): a stream of meeting records in families that share
  the people and the topic and differ in place and date; record ``i`` is the same whatever
  stream length is asked for, so smaller stores are prefixes of larger ones, and the probe
  queries (about records among the first ``probe_span``) are the same at every size.
* :func:`conversations`: multi-session chats (one namespace per persona) in which facts
  are stated once (``single``), across two sessions (``multi-hop``), changed later
  (``update``: the evidence is the newest statement) or given by the assistant
  (``assistant``: the request and the answer). Each question lists its evidence turns by
  the ids :meth:`t4dm_core.Store.add_conversation` assigns (see :func:`turn_id`).
* :func:`redundant_stream`: facts restated several times with small surface changes (the
  input a sleep should compact), with held-out questions; evidence = every restatement.

Nothing here touches a store: generators return plain frozen dataclasses. Thread-safe
(no shared mutable state).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "ChangingFact",
    "ConversationSet",
    "FactChange",
    "Item",
    "Query",
    "Scenario",
    "Session",
    "changing_facts",
    "conversations",
    "near_collisions",
    "redundant_stream",
    "slot_stories",
    "turn_id",
]

T = TypeVar("T")
Rng = np.random.Generator
DAY = 86_400.0
ERA_DAYS = 30.0
BASE_TIME = 1_735_689_600.0  # 2025-01-01T00:00:00Z: valid times of scenario C start here


# ----------------------------------------------------------------------------- types
@dataclass(frozen=True)
class Item:
    """One memory to store: id, text, JSON metadata and (optionally) the start of its valid time."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    valid_from: float | None = None


@dataclass(frozen=True)
class Query:
    """A question, the ids of the memories that answer it (``evidence``), its category and namespace."""

    id: str
    text: str
    evidence: tuple[str, ...]
    category: str
    namespace: str = "default"


@dataclass(frozen=True)
class Scenario:
    """Items to store (in order) and queries with known evidence."""

    name: str
    items: tuple[Item, ...]
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class FactChange:
    """A value of a changing fact, from ``era`` on (``valid_from`` is when it began to hold)."""

    era: int
    valid_from: float
    value: str
    text: str


@dataclass(frozen=True)
class ChangingFact:
    """A preference or setting and its values over time (``changes`` in era order, first at era 0)."""

    key: str
    kind: str
    question: str
    changes: tuple[FactChange, ...]

    def change_at(self, era: int) -> FactChange:
        """The change in effect at ``era`` (the latest one at or before it)."""
        return [c for c in self.changes if c.era <= era][-1]


@dataclass(frozen=True)
class Session:
    """One conversation session: ``turns`` are (role, text) pairs, ids per :func:`turn_id`."""

    id: str
    namespace: str
    turns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ConversationSet:
    """Sessions (store them in this order) and questions whose evidence are turn ids."""

    sessions: tuple[Session, ...]
    queries: tuple[Query, ...]


def turn_id(session_id: str, turn: int) -> str:
    """The id ``Store.add_conversation`` gives turn ``turn`` (0-based) of a session appended in one call."""
    return f"{session_id}/{turn:06d}"


# ----------------------------------------------------------------------------- vocabulary
FIRST_NAMES = ("Maria", "Ana", "Liam", "Noah", "Priya", "Omar", "Chen", "Sofia", "Lucas", "Amara", "Jonas", "Elena",
               "Kofi", "Yuki", "Mateo", "Zara", "Ivan", "Leila", "Tomas", "Nadia", "Ravi", "Hana", "Diego", "Freya",
               "Samir", "Ingrid", "Kenji", "Aisha", "Felix", "Clara", "Bruno", "Mei", "Oscar", "Leah", "Emil",
               "Rosa", "Hugo", "Nora", "Arjun", "Lina", "Pablo", "Greta", "Tariq", "Iris", "Milan", "Sara", "Viktor",
               "Alma", "Dario", "June")
LAST_NAMES = ("Lopez", "Silva", "Novak", "Khan", "Okafor", "Tanaka", "Berg", "Costa", "Meyer", "Haddad", "Rossi",
              "Dubois", "Park", "Larsen", "Moreau", "Ivanova", "Santos", "Fischer", "Nakamura", "Mensah", "Kowalski",
              "Reyes", "Lind", "Sato", "Petrov", "Alvarez", "Becker", "Wong", "Horvat", "Ortiz", "Quinn", "Varga",
              "Sharma", "Keller", "Ahmed", "Brandt", "Castro", "Holm", "Jansen", "Ferreira")
PLACES = (
    "the Harbor Street library", "the old train station", "Cafe Lumen", "the north parking garage",
    "the community garden", "the hardware store on Elm Road", "the night market", "the public swimming pool",
    "the dentist's waiting room", "the bakery on Quay Lane", "the airport lounge", "the bike repair shop",
    "the town hall", "the riverside park", "the laundromat", "the co-working space", "the farmers' market",
    "the museum cafe", "the ferry terminal", "the climbing gym", "the bus depot", "the pharmacy",
    "the concert hall lobby", "the school gym", "the ski lodge", "the campsite by the lake", "the office kitchen",
    "the post office", "the hotel lobby", "the flower shop", "the car wash", "the yoga studio",
    "the bookshop on Mill Street", "the ice rink", "the tennis club", "the art supply store", "the vet clinic",
    "the petrol station", "the hospital cafeteria", "the rooftop bar")
COLOURS = ("blue", "red", "green", "black", "yellow", "grey", "white", "orange", "purple", "silver")
OBJECTS = ("umbrella", "backpack", "notebook", "scarf", "laptop", "phone charger", "thermos", "camera", "jacket",
           "wallet", "guitar case", "bicycle helmet", "wristwatch", "pair of sunglasses", "tablet", "key ring",
           "water bottle", "toolbox", "suitcase", "library card")
# (past tense, base form, synonym past, synonym base)
VERBS = (("left", "leave", "forgot", "forget"), ("lost", "lose", "misplaced", "misplace"),
         ("found", "find", "came across", "come across"), ("repaired", "repair", "fixed", "fix"),
         ("sold", "sell", "got rid of", "get rid of"), ("bought", "buy", "picked up", "pick up"),
         ("dropped off", "drop off", "handed in", "hand in"))
WEEKDAYS = tuple(calendar.day_name)
DAY_PARTS = ("morning", "afternoon", "evening")
MONTHS = tuple(calendar.month_name[1:])
TOPICS = ("the quarterly budget", "the kitchen renovation", "the school fundraiser", "the new hiring plan",
          "a wedding playlist", "the office move", "the product launch", "a camping trip", "the garden redesign",
          "the charity run", "the tax return", "the website redesign", "a birthday surprise", "the book club list",
          "the holiday rota", "the car insurance renewal", "the marketing survey", "the volunteer schedule",
          "the roof repair", "a film night", "the mortgage offer", "the conference talk", "the team offsite",
          "the client contract", "the piano recital", "the neighbourhood watch", "the data migration",
          "the training plan", "the rental agreement", "the museum visit", "the podcast pilot", "the art exhibition",
          "the football season", "the recycling scheme", "the staff party", "the grant application",
          "the exchange student visit", "the security audit", "the menu tasting", "the family reunion")
CITIES = ("Porto", "Lisbon", "Valencia", "Lyon", "Hamburg", "Krakow", "Tallinn", "Bergen", "Galway", "Bologna",
          "Ghent", "Seville", "Utrecht", "Brno", "Tampere", "Aarhus", "Graz", "Ljubljana", "Cork", "Nantes",
          "Leipzig", "Malmo", "Bilbao", "Turin", "Zagreb", "Riga", "Vilnius", "Basel", "Edinburgh", "Dubrovnik")

# Scenario C: (attribute, values) of preferences and (parameter, values) of service settings.
PREFERENCES = (("editor theme", ("dark", "light", "solarized", "high-contrast")),
               ("coffee order", ("flat white", "oat latte", "double espresso", "cold brew")),
               ("meeting time", ("9 am", "11 am", "2 pm", "4 pm")),
               ("notification channel", ("email", "SMS", "Slack", "push notifications")),
               ("airline seat", ("aisle", "window", "exit row")),
               ("reply language", ("English", "Spanish", "German", "Portuguese")),
               ("measurement units", ("metric", "imperial")),
               ("music streaming service", ("Spotify", "Tidal", "Deezer", "Apple Music")))
SETTINGS = (("request timeout", ("15 s", "30 s", "45 s", "60 s", "90 s")),
            ("deploy region", ("us-east-1", "eu-west-1", "ap-south-1", "eu-central-1")),
            ("replica count", ("2", "3", "4", "6", "8")),
            ("log level", ("DEBUG", "INFO", "WARNING", "ERROR")),
            ("cache TTL", ("5 minutes", "15 minutes", "1 hour", "6 hours")),
            ("database pool size", ("10", "20", "40", "80")),
            ("rate limit", ("100 requests per minute", "500 requests per minute", "2000 requests per minute")))
SERVICE_PARTS = ("billing", "payments", "search", "ledger", "invoice", "catalog", "shipping", "identity", "pricing",
                 "reporting", "inventory", "checkout", "media", "profile", "audit")
SERVICE_KINDS = ("api", "worker", "indexer", "gateway", "scheduler")


# ----------------------------------------------------------------------------- helpers
def _rng(seed: int, *stream: int) -> Rng:
    """An independent generator per (seed, stream...) so one part never shifts another."""
    return np.random.default_rng([seed, *stream])


def _pick(rng: Rng, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def _person(rng: Rng) -> tuple[str, str]:
    return _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)


def _date(rng: Rng) -> str:
    return f"{_pick(rng, MONTHS)} {int(rng.integers(1, 29))}"


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# ----------------------------------------------------------------------------- A: slot stories
STORY_TEMPLATES = ("On {day}, {who} {verb} the {obj} at {place}.",
                   "{who} {verb} the {obj} at {place} on {day}.",
                   "It was {day} when {who} {verb} the {obj} at {place}.")


@dataclass(frozen=True)
class _Story:
    first: str
    last: str
    verb: int
    colour: str
    obj: str

    @property
    def keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Identity of the story for a full-name cue and for a surname fragment cue."""
        return (self.first, self.last, str(self.verb), self.colour, self.obj), \
            (self.last, str(self.verb), self.colour, self.obj)


def _hard_negatives(rng: Rng, t: _Story) -> list[_Story]:
    """Four stories sharing all identifying slots of ``t`` but one."""
    other_verb = (t.verb + 1 + int(rng.integers(len(VERBS) - 1))) % len(VERBS)
    other_colour = _pick(rng, [c for c in COLOURS if c != t.colour])
    other_obj = _pick(rng, [o for o in OBJECTS if o != t.obj])
    other_last = _pick(rng, [n for n in LAST_NAMES if n != t.last])
    return [_Story(t.first, t.last, other_verb, t.colour, t.obj), _Story(t.first, t.last, t.verb, other_colour, t.obj),
            _Story(t.first, t.last, t.verb, t.colour, other_obj), _Story(t.first, other_last, t.verb, t.colour, t.obj)]


def _story_text(rng: Rng, s: _Story) -> str:
    day = f"{_pick(rng, WEEKDAYS)} {_pick(rng, DAY_PARTS)}"
    return _pick(rng, STORY_TEMPLATES).format(day=day, who=f"{s.first} {s.last}", verb=VERBS[s.verb][0],
                                              obj=f"{s.colour} {s.obj}", place=_pick(rng, PLACES))


def _story_cues(s: _Story) -> dict[str, str]:
    past, base, _syn_past, syn_base = VERBS[s.verb]
    return {"direct": f"Where and when did {s.first} {s.last} {base} the {s.colour} {s.obj}?",
            "paraphrase": f"Where and when did {s.first} {s.last} {syn_base} the {s.colour} {s.obj}?",
            "fragment": f"{s.last} ... {s.colour} {s.obj} ... {past}"}


def slot_stories(seed: int = 0, n_groups: int = 300) -> Scenario:
    """Scenario A: ``n_groups`` x (1 target + 4 hard negatives) stories, 3 partial cues per target.

    Items are shuffled (a target is not next to its negatives); item metadata holds the
    group, the role and the identifying slots (who, verb, object). Every cue identifies
    exactly one story: no two stories share the (first, last, verb, colour, object) or the
    (last, verb, colour, object) combination.
    """
    _check_positive(n_groups=n_groups)
    rng = _rng(seed, 1)
    seen_full: set[tuple[str, ...]] = set()
    seen_fragment: set[tuple[str, ...]] = set()
    items: list[Item] = []
    queries: list[Query] = []
    group = 0
    while group < n_groups:
        first, last = _person(rng)
        target = _Story(first, last, int(rng.integers(len(VERBS))), _pick(rng, COLOURS), _pick(rng, OBJECTS))
        stories = [target, *_hard_negatives(rng, target)]
        full = {s.keys[0] for s in stories}
        fragments = {s.keys[1] for s in stories}
        if len(full) < len(stories) or len(fragments) < len(stories) or full & seen_full or fragments & seen_fragment:
            continue  # would make some cue ambiguous: draw another group
        seen_full |= full
        seen_fragment |= fragments
        for j, story in enumerate(stories):
            role = "target" if j == 0 else "negative"
            mid = f"a-{group:04d}-{'t' if j == 0 else f'n{j}'}"
            slots = {"who": f"{story.first} {story.last}", "verb": VERBS[story.verb][0],
                     "object": f"{story.colour} {story.obj}"}
            items.append(Item(mid, _story_text(rng, story), {"scenario": "A", "group": group, "role": role, **slots}))
        target_id = f"a-{group:04d}-t"
        queries.extend(Query(f"{target_id}-{cue}", text, (target_id,), cue)
                       for cue, text in _story_cues(target).items())
        group += 1
    order = rng.permutation(len(items))
    return Scenario("A-slot-stories", tuple(items[i] for i in order), tuple(queries))


# ----------------------------------------------------------------------------- C: changing facts
PREFERENCE_TEXTS = ("{who} prefers {value} as the {attr}.", "{who}'s preferred {attr} is {value}.",
                    "Note for later: {who} wants {value} for the {attr}.")
SETTING_TEXTS = ("The {attr} of {who} is {value}.", "{who}: {attr} is set to {value}.",
                 "Config for {who}: the {attr} is {value}.")


def changing_facts(seed: int = 0, n_preferences: int = 80, n_settings: int = 80, eras: int = 4) -> list[ChangingFact]:
    """Scenario C: preferences of people and settings of services that change over ``eras`` eras.

    Every fact has a value at era 0 and at least one change; each later era changes it
    with probability 1/2 (always to a different value than the one before). Era ``e``
    values become valid at ``BASE_TIME + e * 30 days`` plus a per-fact offset of up to a
    day. Keys (a person or service plus an attribute) are unique.
    """
    _check_positive(n_preferences=n_preferences, n_settings=n_settings)
    if eras < 2:
        raise ValueError(f"eras must be >= 2 (a fact must be able to change), got {eras!r}")
    rng = _rng(seed, 3)
    out: list[ChangingFact] = []
    for kind, count, table, texts in (("preference", n_preferences, PREFERENCES, PREFERENCE_TEXTS),
                                      ("setting", n_settings, SETTINGS, SETTING_TEXTS)):
        seen: set[tuple[str, str]] = set()
        while len(seen) < count:
            who = " ".join(_person(rng)) if kind == "preference" else \
                f"{_pick(rng, SERVICE_PARTS)}-{_pick(rng, SERVICE_KINDS)}"
            attr, values = _pick(rng, table)
            if (who, attr) in seen:
                continue
            key = f"{'pref' if kind == 'preference' else 'cfg'}-{len(seen):04d}"
            seen.add((who, attr))
            question = (f"Which {attr} does {who} prefer?" if kind == "preference"
                        else f"What is the {attr} of {who}?")
            out.append(ChangingFact(key, kind, question, _changes(rng, who, attr, values, texts, eras)))
    return out


def _changes(rng: Rng, who: str, attr: str, values: Sequence[str], texts: Sequence[str],
             eras: int) -> tuple[FactChange, ...]:
    change_eras = [0] + [e for e in range(1, eras) if rng.random() < 0.5]
    if len(change_eras) == 1:
        change_eras.append(int(rng.integers(1, eras)))
    offset = float(rng.uniform(0, DAY))
    out: list[FactChange] = []
    value = _pick(rng, values)
    for era in change_eras:
        if out:
            value = _pick(rng, [v for v in values if v != out[-1].value])
        text = _pick(rng, texts).format(who=who, attr=attr, value=value)
        out.append(FactChange(era, BASE_TIME + era * ERA_DAYS * DAY + offset, value, text))
    return tuple(out)


# ----------------------------------------------------------------------------- D: near collisions
MEETING_TEXTS = ("{a} met {b} at {place} on {date} to talk about {topic}.",
                 "On {date}, {a} and {b} sat down at {place} to discuss {topic}.",
                 "{a} had a meeting with {b} about {topic} at {place} on {date}.")
MEETING_CUES = ("When did {a} meet {b} at {place} about {topic}?",
                "On what date did {a} and {b} discuss {topic} at {place}?")
FAMILY_SIZE = 4


def near_collisions(seed: int = 0, n: int = 1_000, *, probe_span: int = 1_000, n_probes: int = 200) -> Scenario:
    """Scenario D: ``n`` meeting records in families of 4 (same people and topic; place and date differ).

    The stream is prefix-stable: record ``i`` does not depend on ``n``. Probe queries ask
    for the date of ``n_probes`` records spread evenly over the first ``probe_span`` (all
    present when ``n >= probe_span``); a cue names both people, the place and the topic,
    and no other record in the stream shares that combination. Item metadata holds the
    family and the slots (a, b, place, topic, date).
    """
    _check_positive(n=n, probe_span=probe_span, n_probes=n_probes)
    if n_probes > probe_span or probe_span > n:
        raise ValueError(f"need n_probes <= probe_span <= n, got {n_probes}, {probe_span}, {n}")
    rng = _rng(seed, 4)
    seen: set[tuple[str, str, str, str]] = set()
    items: list[Item] = []
    cues: list[str] = []
    family = 0
    while len(items) < n:
        a, b = " ".join(_person(rng)), " ".join(_person(rng))
        topic = _pick(rng, TOPICS)
        places = [PLACES[int(i)] for i in rng.permutation(len(PLACES))[:FAMILY_SIZE]]
        if a == b or any((a, b, topic, place) in seen for place in places):
            continue  # a cue would match two records: draw another family
        for place in places[: n - len(items)]:
            seen.add((a, b, topic, place))
            slots = {"a": a, "b": b, "place": place, "topic": topic, "date": _date(rng)}
            items.append(Item(f"d-{len(items):06d}", _pick(rng, MEETING_TEXTS).format(**slots),
                              {"scenario": "D", "family": family, **slots}))
            cues.append(_pick(rng, MEETING_CUES).format(**slots))
        family += 1
    stride = probe_span // n_probes
    queries = tuple(Query(f"{items[i].id}-q", cues[i], (items[i].id,), "probe")
                    for i in range(0, stride * n_probes, stride))
    return Scenario(f"D-near-collisions-{n}", tuple(items), queries)


# ----------------------------------------------------------------------------- conversations
@dataclass(frozen=True)
class _Fact:
    """A fact of a persona: the exchanges that state it, and the question about it.

    ``exchanges`` are (user text, assistant text or None for a generic reply); all of them
    go in one session except for ``multi-hop`` / ``update`` facts, whose two exchanges go in
    two different sessions (in order). ``evidence`` lists (exchange index, role) pairs.
    """

    category: str
    exchanges: tuple[tuple[str, str | None], ...]
    question: str
    evidence: tuple[tuple[int, str], ...]


PETS = ("beagle", "tabby cat", "rabbit", "border collie", "parrot", "greyhound")
PET_NAMES = ("Biscuit", "Mochi", "Pepper", "Juniper", "Ziggy", "Waffles", "Clementine", "Pickles", "Nugget",
             "Marble", "Bramble", "Olive")
ALLERGENS = ("peanuts", "shellfish", "penicillin", "bee stings", "sesame", "cats", "kiwi fruit", "latex")
INSTRUMENTS = ("cello", "trumpet", "ukulele", "drums", "clarinet", "harp", "banjo", "saxophone")
CARS = ("Skoda Octavia", "Toyota Yaris", "Volvo V60", "Fiat Panda", "Mazda 3", "Renault Clio", "Kia Ceed")
COMPANIES = ("Northwind Labs", "Bluefin Analytics", "Greyhawk Logistics", "Lumen Health", "Tidewater Energy",
             "Copperleaf Studios", "Halcyon Insurance", "Orchard Robotics")
JOBS = ("data engineer", "nurse", "architect", "product manager", "pharmacist", "teacher", "electrician",
        "accountant")
DISHES = ("mushroom risotto", "lamb tagine", "pad thai", "shakshuka", "paella", "butter chicken", "ramen",
          "spinach lasagne", "fish tacos", "moussaka")
LANGUAGES = ("Japanese", "Portuguese", "Polish", "Korean", "Turkish", "Dutch", "Greek", "Swahili")
TEAMS = ("Celtic", "Benfica", "Ajax", "Napoli", "Feyenoord", "Sevilla", "Galatasaray", "Rangers")
KIDS = ("Ella", "Mia", "Ava", "Zoe", "Isla", "Ruby", "Lena", "Nina", "Maya", "Lucia")
RACES = ("Berlin half marathon", "Paris 10k", "Lisbon marathon", "Amsterdam half marathon", "London 10 mile race",
         "Rome marathon")
PHONES = ("Pixel 8", "iPhone 13", "Galaxy S23", "Fairphone 5", "Nokia G42", "OnePlus 12")
GYM_TIMES = ("6 am", "7 am", "noon", "6 pm", "8 pm")
TOOLS = ("ladder", "pressure washer", "hedge trimmer", "tile cutter", "drill", "wheelbarrow")
BOOKS = ("The Remains of the Day", "Station Eleven", "The Left Hand of Darkness", "Piranesi", "A Gentleman in Moscow",
         "The Name of the Rose", "Never Let Me Go", "The Shadow of the Wind")
PLANTS = ("monstera", "fiddle-leaf fig", "snake plant", "bonsai", "cactus", "pothos")
PLANT_NAMES = ("Sir Leafalot", "Fernando", "Spike", "Captain Green", "Twiggy", "Basil Brush")
RESTAURANTS = ("Osteria del Ponte", "The Copper Kettle", "Sakura House", "Casa Lume", "Le Petit Jardin",
               "The Salt Room")
GIFTS = ("vintage fountain pen", "watercolour set", "smoker for barbecues", "star map print", "bird feeder camera",
         "leather-bound journal")


def _persona_facts(rng: Rng) -> list[_Fact]:
    """The 22 facts of one persona: 10 single, 4 multi-hop, 4 update, 4 assistant-given."""
    p: Callable[[Sequence[str]], str] = partial(_pick, rng)
    pet, pet_name, city = p(PETS), p(PET_NAMES), p(CITIES)
    month, day = p(MONTHS), int(rng.integers(1, 29))
    singles = [
        _Fact("single", ((f"We finally adopted a {pet} from the shelter and named it {pet_name}.", None),),
              f"What is the name of the {pet} we adopted?", ((0, "user"),)),
        _Fact("single", ((f"Just so you know, I'm allergic to {p(ALLERGENS)}.", None),),
              "Do I have any allergies?", ((0, "user"),)),
        _Fact("single", ((f"I grew up in {city}, right by the sea.", None),), "Where is my hometown?", ((0, "user"),)),
        _Fact("single", ((f"I've started taking {p(INSTRUMENTS)} lessons on Saturday mornings.", None),),
              "Which musical instrument am I learning?", ((0, "user"),)),
        _Fact("single", ((f"I bought a second-hand {p(COLOURS)} {p(CARS)} last month.", None),),
              "What kind of car did I get recently?", ((0, "user"),)),
        _Fact("single", ((f"My birthday is on {month} {day}, in case you want to remind me to plan something.",
                          None),), "When is my birthday?", ((0, "user"),)),
        _Fact("single", ((f"I signed the contract with {p(COMPANIES)} yesterday, I start as a {p(JOBS)} "
                          "in two weeks.", None),), "Which employer am I joining?", ((0, "user"),)),
        _Fact("single", ((f"Honestly my all-time favourite dish is {p(DISHES)}.", None),),
              "What food do I like most?", ((0, "user"),)),
        _Fact("single", ((f"I'm trying to learn {p(LANGUAGES)} before our trip next year.", None),),
              "Which language am I studying?", ((0, "user"),)),
        _Fact("single", ((f"Our daughter {p(KIDS)} starts kindergarten in September.", None),),
              "What is my daughter called?", ((0, "user"),)),
    ]
    sister, manager, friend, neighbour = (p(FIRST_NAMES) for _ in range(4))
    multi = [
        _Fact("multi-hop", ((f"My sister {sister} just finished her nursing degree.", None),
                            (f"{sister} is moving to {p(CITIES)} for her first hospital job.", None)),
              "Which city is my sister moving to?", ((0, "user"), (1, "user"))),
        _Fact("multi-hop", ((f"My new manager is called {manager}.", None),
                            (f"{manager} said the team offsite will be in {p(CITIES)}.", None)),
              "Where is my manager's team offsite going to be?", ((0, "user"), (1, "user"))),
        _Fact("multi-hop", ((f"My best friend {friend} went vegan this year.", None),
                            (f"I'm cooking {p(DISHES)} for {friend} on Friday.", None)),
              "What am I cooking for my best friend?", ((0, "user"), (1, "user"))),
        _Fact("multi-hop", ((f"Our neighbour {neighbour} is a retired pilot.", None),
                            (f"{neighbour} lent us a {p(TOOLS)} for the weekend.", None)),
              "What did the retired pilot next door lend us?", ((0, "user"), (1, "user"))),
    ]
    race1, race2 = _two(rng, RACES)
    home1, home2 = _two(rng, CITIES)
    phone1, phone2 = _two(rng, PHONES)
    gym1, gym2 = _two(rng, GYM_TIMES)
    updates = [
        _Fact("update", ((f"I'm training for the {race1}.", None),
                         (f"Change of plan: I'm switching to the {race2} instead.", None)),
              "Which race am I training for now?", ((1, "user"),)),
        _Fact("update", ((f"We're renting a flat in {home1}.", None), (f"Big news, we moved to {home2} last week!",
                                                                      None)),
              "Which city do I live in now?", ((1, "user"),)),
        _Fact("update", ((f"My phone is a {phone1}.", None), (f"I replaced my phone, I have a {phone2} now.", None)),
              "What phone do I currently use?", ((1, "user"),)),
        _Fact("update", ((f"I go to the gym at {gym1}.", None), (f"I moved my gym sessions to {gym2}.", None)),
              "What time do I work out these days?", ((1, "user"),)),
    ]
    trip, plant = p(CITIES), p(PLANTS)
    given = [
        _Fact("assistant", ((f"Can you suggest a novel for my flight to {trip}?",
                             f"You could try '{p(BOOKS)}', it's gripping and easy to read on a plane."),),
              f"Which novel did you suggest for my flight to {trip}?", ((0, "user"), (0, "assistant"))),
        _Fact("assistant", ((f"I got a new {plant}, can you help me name it?", f"How about {p(PLANT_NAMES)}?"),),
              f"What name did you come up with for my {plant}?", ((0, "user"), (0, "assistant"))),
        _Fact("assistant", (("Where should we go for our anniversary dinner?",
                             f"{p(RESTAURANTS)} would be perfect, book a table by the window."),),
              "Which restaurant did you recommend for our anniversary?", ((0, "user"), (0, "assistant"))),
        _Fact("assistant", (("Any gift idea for my dad's 60th?", f"A {p(GIFTS)} would be a thoughtful choice."),),
              "What present did you propose for my father's birthday?", ((0, "user"), (0, "assistant"))),
    ]
    return singles + multi + updates + given


def _two(rng: Rng, seq: Sequence[str]) -> tuple[str, str]:
    i, j = rng.permutation(len(seq))[:2]
    return seq[int(i)], seq[int(j)]


FILLER_USER = (
    "My coworker {name} just adopted a {pet} called {pet_name}.",
    "My neighbour is learning the {instrument}, I can hear it through the wall.",
    "{name} from work is moving to {city} next month.",
    "I watched a documentary about {city} last night.",
    "We had {dish} for dinner yesterday, it was fine.",
    "Work has been hectic this week.",
    "I might go hiking on Saturday if the weather holds.",
    "My cousin {name} is thinking about becoming a {job}.",
    "Do you know any good podcasts about history?",
    "I thought about getting a {pet} years ago but never did.",
    "The traffic this morning was terrible.",
    "{name} recommended a restaurant called {restaurant}, have you heard of it?",
    "I need to renew my passport before summer.",
    "My friend {name} drives a {car} and loves it.",
    "Can you remind me how compound interest works?",
    "I'm a bit tired today, didn't sleep well.",
    "We're thinking about repainting the living room.",
    "My brother supports {team}, we argue about football all the time.",
    "I read that {language} is hard to learn for English speakers.",
    "What's a good way to keep basil alive indoors?",
    "{name} is allergic to {allergen}, so we cook carefully when she visits.",
    "I have a dentist appointment on {month} {day}.",
    "The gym was packed at {gym} today.",
    "My old phone was a {phone}, it lasted ages.",
    "A colleague ran the {race} last year.",
    "I'm reading a book about the history of {city}.",
)
FILLER_ASSISTANT = (
    "That sounds like a lot, how are you holding up?",
    "Nice! Tell me more when you have a moment.",
    "Happy to help with that.",
    "I hope the weekend goes well.",
    "Good to know, thanks for sharing.",
    "That makes sense.",
    "Let me know if you want me to look into it.",
    "Sounds fun, enjoy!",
)
ACKNOWLEDGEMENTS = ("Thanks for telling me, I'll keep that in mind.", "That's great news!", "Got it.",
                    "Congratulations!", "Oh, interesting!")


def _filler(rng: Rng) -> tuple[str, str]:
    """A filler exchange whose slots come from the same vocabulary as the facts (hard negatives)."""
    slots = {"name": _pick(rng, FIRST_NAMES), "pet": _pick(rng, PETS), "pet_name": _pick(rng, PET_NAMES),
             "instrument": _pick(rng, INSTRUMENTS), "city": _pick(rng, CITIES), "dish": _pick(rng, DISHES),
             "job": _pick(rng, JOBS), "restaurant": _pick(rng, RESTAURANTS), "car": _pick(rng, CARS),
             "team": _pick(rng, TEAMS), "language": _pick(rng, LANGUAGES), "allergen": _pick(rng, ALLERGENS),
             "month": _pick(rng, MONTHS), "day": int(rng.integers(1, 29)), "gym": _pick(rng, GYM_TIMES),
             "phone": _pick(rng, PHONES), "race": _pick(rng, RACES)}
    return _pick(rng, FILLER_USER).format(**slots), _pick(rng, FILLER_ASSISTANT)


def conversations(seed: int = 0, n_personas: int = 8, sessions: int = 20, turns_per_session: int = 20) -> \
        ConversationSet:
    """Multi-session conversations, one namespace (``conv-NN``) per persona, and 22 questions per persona.

    Each session has ``turns_per_session`` turns (user and assistant alternate, user
    first). Fact exchanges replace filler exchanges at random places; the two exchanges of
    a multi-hop or update fact land in two different sessions, in order. Questions are
    asked after the last session; their evidence are turn ids (see :func:`turn_id`).
    """
    _check_positive(n_personas=n_personas, sessions=sessions, turns_per_session=turns_per_session)
    if sessions < 2 or turns_per_session % 2 or turns_per_session < 4:
        raise ValueError("need sessions >= 2 and an even turns_per_session >= 4")
    pairs = turns_per_session // 2
    out_sessions: list[Session] = []
    queries: list[Query] = []
    for persona in range(n_personas):
        rng = _rng(seed, 5, persona)
        namespace = f"conv-{persona:02d}"
        facts = _persona_facts(rng)
        if sum(len(f.exchanges) for f in facts) > sessions * pairs // 2:
            raise ValueError("too few turns for the facts: raise sessions or turns_per_session")
        grid: list[list[tuple[str, str] | None]] = [[None] * pairs for _ in range(sessions)]
        for f_index, fact in enumerate(facts):
            slots = _place(rng, grid, len(fact.exchanges))
            evidence: list[str] = []
            for ex_index, ((user, reply), (s, slot)) in enumerate(zip(fact.exchanges, slots, strict=True)):
                grid[s][slot] = (user, reply if reply is not None else _pick(rng, ACKNOWLEDGEMENTS))
                sid = f"{namespace}-s{s:02d}"
                evidence.extend(turn_id(sid, 2 * slot + (role == "assistant"))
                                for i, role in fact.evidence if i == ex_index)
            queries.append(Query(f"{namespace}-q{f_index:02d}", fact.question, tuple(evidence), fact.category,
                                 namespace))
        for s, row in enumerate(grid):
            turns: list[tuple[str, str]] = []
            for exchange in row:
                user, reply = exchange if exchange is not None else _filler(rng)
                turns.extend((("user", user), ("assistant", reply)))
            out_sessions.append(Session(f"{namespace}-s{s:02d}", namespace, tuple(turns)))
    return ConversationSet(tuple(out_sessions), tuple(queries))


def _place(rng: Rng, grid: list[list[tuple[str, str] | None]], count: int) -> list[tuple[int, int]]:
    """Free (session, slot) places for ``count`` exchanges, in distinct sessions in increasing order."""
    while True:
        sessions = sorted(int(s) for s in rng.permutation(len(grid))[:count])
        free = [[i for i, e in enumerate(grid[s]) if e is None] for s in sessions]
        if all(free):
            return [(s, _pick(rng, f)) for s, f in zip(sessions, free, strict=True)]


# ----------------------------------------------------------------------------- redundant stream
RELATIONS = (("works at", COMPANIES, "Where does {who} work?"),
             ("lives in", CITIES, "Which city is {who} based in?"),
             ("is allergic to", ALLERGENS, "What is {who} allergic to?"),
             ("plays the", INSTRUMENTS, "Which instrument does {who} play?"),
             ("drives a", CARS, "What car does {who} have?"),
             ("cooks", DISHES, "What is {who}'s signature dish?"))
RESTATEMENTS = ("{fact}.", "Reminder: {fact}.", "As mentioned before, {fact}.", "{fact} (noted again).",
                "FYI {fact}.", "{lower}.", "Just to repeat: {fact}.")


def redundant_stream(seed: int = 0, n_facts: int = 300, max_restatements: int = 6) -> Scenario:
    """Facts about people, each restated 1..``max_restatements`` times with small surface changes.

    The first statement of a fact is its plain form; later ones add a prefix or suffix,
    change case, or repeat it verbatim. Items are interleaved (a stream, not grouped by
    fact); metadata ``{"fact": n}``. One held-out question per fact (not a stored text);
    its evidence is every restatement. No two facts share (person, relation).
    """
    _check_positive(n_facts=n_facts, max_restatements=max_restatements)
    rng = _rng(seed, 6)
    seen: set[tuple[str, str]] = set()
    statements: list[tuple[int, str]] = []
    queries: list[Query] = []
    while len(queries) < n_facts:
        who = " ".join(_person(rng))
        relation, values, question = _pick(rng, RELATIONS)
        if (who, relation) in seen:
            continue
        seen.add((who, relation))
        fact_index = len(queries)
        fact = f"{who} {relation} {_pick(rng, values)}"
        copies = int(rng.integers(1, max_restatements + 1))
        texts = [f"{fact}."] + [_pick(rng, RESTATEMENTS).format(fact=fact, lower=fact.lower())
                                for _ in range(copies - 1)]
        statements.extend((fact_index, t) for t in texts)
        ids = tuple(f"r-{fact_index:04d}-{j}" for j in range(copies))
        queries.append(Query(f"r-{fact_index:04d}-q", question.format(who=who), ids, relation))
    # Interleave the facts; each fact's restatements keep their order (j = 0 is the plain form).
    texts_of: dict[int, list[str]] = {}
    for fact_index, text in statements:
        texts_of.setdefault(fact_index, []).append(text)
    items: list[Item] = []
    used: dict[int, int] = {}
    for i in np.argsort(rng.random(len(statements)), kind="stable"):
        fact_index = statements[int(i)][0]
        j = used.get(fact_index, 0)
        used[fact_index] = j + 1
        items.append(Item(f"r-{fact_index:04d}-{j}", texts_of[fact_index][j],
                          {"scenario": "redundant", "fact": fact_index}))
    return Scenario("redundant-stream", tuple(items), tuple(queries))
