"""Dates in French and English text: find them (exact offsets), resolve them, compare them.

Every date parse and resolution of `qa` lives here. A `DateMention` is a span of the text and
its normalised value: ISO `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. Relative expressions ("juin
dernier", "le 18 octobre dernier", "l'an dernier", "last June", "lundi 18 novembre") resolve
against a reference date: a document's metadata date, else the latest full date its text
states (`reference_date`, flagged as inferred).

Why rules and not `dateparser`: measured here (dateparser 1.5.0), it takes 0.6 s to import
and 0.66 s for its first French parse, and returns None for "juin dernier", "le 18 octobre
dernier", "l'an dernier" and "last June", the expressions this corpus is full of. The forms
news text uses are few; the rules below cover them and are tested table-driven.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from qa.errors import InvalidQuestionError

# Month names (French with or without accents, English, common abbreviations) -> number.
_MONTH_NAMES = {
    "janvier": 1, "fevrier": 2, "février": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "aout": 8, "août": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "decembre": 12, "décembre": 12,
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "fév": 2, "fev": 2, "apr": 4, "avr": 4, "jun": 6, "jul": 7,
    "juil": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12, "déc": 12,
}
_ABBREVIATIONS = frozenset(k for k in _MONTH_NAMES if len(k) <= 4 and k not in (
    "mai", "juin", "mars", "aout", "août", "may", "june", "july"))
_WEEKDAYS = {
    "lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5,
    "dimanche": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
    "saturday": 5, "sunday": 6,
}
_M = "|".join(sorted(map(re.escape, _MONTH_NAMES), key=len, reverse=True))
_WD = "|".join(_WEEKDAYS)
_DAY = r"(?P<d>3[01]|[12]\d|0?[1-9])(?:er|st|nd|rd|th)?"
_DAY2 = r"(?P<d2>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
# Years a news text means: four digits from 1000 to 2199. "3024" is not a year here.
_Y = r"(?P<y>1\d{3}|20\d\d|21\d\d)"
_Y2 = r"(?P<y2>1\d{3}|20\d\d|21\d\d)"
_LAST_AFTER = r"(?P<last>\s+(?:derni[eè]re?|pass[ée]e?))"
# "fin août", "début juin", "mi-octobre", "late June", "end of May": part of the span.
_MOD = r"(?:(?:fin|d[ée]but|mi-?|courant|early|late|mid-?|end\s+of|beginning\s+of)\s*)?"

_PATTERN = re.compile(
    "|".join([
        # ISO 2024-11-01 / 2024-11, and 01/11/2024 (day first, as French writes it)
        r"(?P<iso>(?<![\d-])(?:1\d{3}|20\d\d|21\d\d)-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?"
        r"(?![\d-]))",
        r"(?P<dmy>(?<![\d/.])(?:3[01]|[12]\d|0?[1-9])[/.](?:1[0-2]|0?[1-9])[/.]"
        r"(?:1\d{3}|20\d\d|21\d\d)(?![\d/.]))",
        # lundi 18 novembre [2024] [dernier]; 18 October 2024; the 1st of June
        rf"(?P<dayfirst>(?:(?P<wd>{_WD}),?\s+)?{_DAY}\s+(?:of\s+)?(?P<m>{_M})\.?"
        rf"(?:,?\s+{_Y})?(?!\w){_LAST_AFTER}?)",
        # Monday, November 18, 2024; October 18
        rf"(?P<monthfirst>(?:(?P<wd2>{_WD}),?\s+)?(?P<m2>{_M})\.?\s+{_DAY2}(?![\d\w])"
        rf"(?:,?\s+{_Y2})?)",
        # juin 2024, June of 2024, fin octobre 2024
        rf"(?P<monthyear>{_MOD}(?P<m3>{_M})\.?\s+(?:(?:de|of)\s+)?(?P<y3>1\d{{3}}|20\d\d|21\d\d)"
        r"(?!\d))",
        # juin dernier, last June
        rf"(?P<lastmonth>(?P<m4>{_M})\s+(?:derni[eè]re?|pass[ée]e?)(?!\w)"
        rf"|(?:last|this\s+past)\s+(?P<m5>{_M}))",
        # l'an dernier, l'année dernière, last year; cette année, this year
        r"(?P<lastyear>l['’]an(?:n[ée]e)?\s+(?:derni[eè]re?|pass[ée]e?)|last\s+year)",
        r"(?P<thisyear>cette\s+ann[ée]e|this\s+year)",
        # fin août (no year): the latest such month up to the reference date
        rf"(?P<month>{_MOD}(?P<m6>{_M}))(?!\w)",
        # a bare year: 1900-2099 only, so that "résolution 1718" is not read as a year
        r"(?P<year>(?<![\d.,/-])(?:19|20)\d\d(?![\d]|[.,/-]\d))",
    ]),
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DateMention:
    """A date expression of a text: text[start:end], its ISO value, how it was resolved.

    `value` is None when the expression needs a reference date and none is known ("le 18
    octobre dernier" in an undated document). `relative` is True when the value depends on
    the reference date (no year was written).
    """

    start: int
    end: int
    text: str
    value: str | None
    relative: bool


@dataclass(frozen=True)
class ReferenceDate:
    """The date a document speaks from; `inferred` when taken from its text, not metadata."""

    value: str
    date: dt.date
    inferred: bool
    # True when the text states no full date and `date` is only the start of the latest
    # month it names: the document was written after it, so year-less dates resolve to
    # their first occurrence from then on ("mai 2023 ... le 18 octobre dernier" -> 2023-10-18).
    lower_bound: bool = False


def bounds(value: str) -> tuple[dt.date, dt.date]:
    """First and last day of an ISO `YYYY`, `YYYY-MM` or `YYYY-MM-DD` value (ValueError)."""
    parts = [int(p) for p in value.split("-")]
    if len(parts) == 1:
        return dt.date(parts[0], 1, 1), dt.date(parts[0], 12, 31)
    if len(parts) == 2:
        year, month = parts
        return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])
    day = dt.date(parts[0], parts[1], parts[2])
    return day, day


def parse_iso(value: str) -> str | None:
    """The value if it is a valid ISO `YYYY`, `YYYY-MM` or `YYYY-MM-DD` date, else None."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}(?:-\d{2}(?:-\d{2})?)?", value):
        return None
    try:
        bounds(value)
    except ValueError:
        return None
    return value


def valid_date(value: str) -> str | None:
    """`value` if it is a real 'YYYY-MM' or 'YYYY-MM-DD' date (a document's date), else None."""
    iso = parse_iso(value)
    return iso if iso is not None and len(iso) > 4 else None


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: dt.date | str | None, name: str) -> dt.date | None:
    """A YYYY-MM-DD filter bound, or InvalidQuestionError naming the field."""
    if value is None or isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        raise InvalidQuestionError(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidQuestionError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


def overlaps(a: str, b: str) -> bool:
    """Whether two ISO values can denote the same day ('2024-06' and '2024-06-19' do)."""
    a0, a1 = bounds(a)
    b0, b1 = bounds(b)
    return a0 <= b1 and b0 <= a1


def _month(name: str) -> int:
    return _MONTH_NAMES[name.lower().rstrip(".")]


MONTH_WORDS: frozenset[str] = frozenset(_MONTH_NAMES)
WEEKDAY_WORDS: frozenset[str] = frozenset(_WEEKDAYS)


def month_number(word: str) -> int | None:
    """1-12 for a French or English month name or abbreviation ('Août', 'sept.'), else None."""
    return _MONTH_NAMES.get(word.lower().rstrip("."))


def _valid_day(year: int, month: int, day: int) -> bool:
    return 1 <= day <= calendar.monthrange(year, month)[1]


def _day_without_year(
    month: int, day: int, weekday: int | None, last: bool, ref: dt.date | None, today: dt.date,
    after: dt.date | None = None,
) -> str | None:
    """Resolve '18 octobre [dernier]' or 'lundi 18 novembre' to a full date, or None."""
    if weekday is not None:
        # A weekday pins the year: the latest year whose date falls on it, not after the
        # reference (a week of slack for announced events), else not after today.
        anchor = (ref + dt.timedelta(days=7)) if ref else today
        for year in range(anchor.year, anchor.year - 12, -1):
            if _valid_day(year, month, day):
                date = dt.date(year, month, day)
                if date <= anchor and date.weekday() == weekday:
                    return date.isoformat()
        return None
    if ref is None:
        if after is None:
            return None
        for year in (after.year, after.year + 1):
            if _valid_day(year, month, day) and dt.date(year, month, day) >= after:
                return dt.date(year, month, day).isoformat()
        return None
    # News speaks of the recent past: the latest such day not after the reference; with
    # 'dernier' strictly before it; without, up to a week after it (an announced date).
    slack = dt.timedelta(days=0 if last else 7)
    for year in (ref.year + 1, ref.year, ref.year - 1, ref.year - 2):
        if _valid_day(year, month, day):
            date = dt.date(year, month, day)
            if date < ref + slack or (not last and date == ref):
                return date.isoformat()
    return None


def _month_without_year(
    month: int, ref: dt.date | None, *, strictly_before: bool, after: dt.date | None = None
) -> str | None:
    if ref is None:
        if after is None:
            return None
        return f"{after.year + (month < after.month):04d}-{month:02d}"
    year = ref.year if (month < ref.month or (month == ref.month and not strictly_before)) \
        else ref.year - 1
    return f"{year:04d}-{month:02d}"


def impossible_dates(text: str) -> list[str]:
    """Date expressions of the text that name no day ("30 février 2024", "31/04/2024")."""
    bad: list[str] = []
    find_dates(text, invalid=bad)
    return bad


def find_dates(
    text: str, *, reference: dt.date | None = None, today: dt.date | None = None,
    after: dt.date | None = None, invalid: list[str] | None = None,
) -> list[DateMention]:
    """Every date expression in text, in order, with offsets into text and resolved values.

    Without a reference, `after` (a lower bound of the text's date) resolves year-less days
    and months to their first occurrence from then on.

    Impossible dates ("30 février 2024") are not dates: they are skipped.
    """
    today = today or dt.date.today()
    out: list[DateMention] = []
    for m in _PATTERN.finditer(text):
        g = m.groupdict()
        value: str | None = None
        relative = False
        start, end = m.start(), m.end()
        try:
            if g["iso"]:
                value = parse_iso(g["iso"])
                if value is None:
                    continue
            elif g["dmy"]:
                d, mo, y = (int(p) for p in re.split(r"[/.]", g["dmy"]))
                value = dt.date(y, mo, d).isoformat()
            elif g["dayfirst"] or g["monthfirst"]:
                first = bool(g["dayfirst"])
                month = _month(g["m"] if first else g["m2"])
                day = int(g["d"] if first else g["d2"])
                year = g["y"] if first else g["y2"]
                wd = g["wd"] if first else g["wd2"]
                if first and g["wd"]:
                    start = m.start("wd")
                if year:
                    value = dt.date(int(year), month, day).isoformat()
                else:
                    if not _valid_day(2024, month, day):  # 29 February exists in leap years
                        if invalid is not None:
                            invalid.append(text[start:end])
                        continue
                    relative = True
                    value = _day_without_year(
                        month, day, _WEEKDAYS[wd.lower()] if wd else None,
                        bool(first and g["last"]), reference, today, after,
                    )
            elif g["monthyear"]:
                if g["m3"].lower() == "may" and not g["m3"][0].isupper():
                    continue  # English modal verb
                value = f"{int(g['y3']):04d}-{_month(g['m3']):02d}"
                bounds(value)
            elif g["lastmonth"]:
                relative = True
                value = _month_without_year(
                    _month(g["m4"] or g["m5"]), reference, strictly_before=True, after=after
                )
            elif g["lastyear"]:
                relative = True
                value = f"{reference.year - 1:04d}" if reference else None
            elif g["thisyear"]:
                relative = True
                value = f"{reference.year:04d}" if reference else None
            elif g["month"]:
                name = g["m6"].rstrip(".")
                if name.lower() in _ABBREVIATIONS:
                    continue  # an abbreviation is a month only next to a day or a year
                if name.lower() in ("may", "march") and not name[0].isupper():
                    continue  # English verbs
                relative = True
                value = _month_without_year(_month(name), reference, strictly_before=False,
                                            after=after)
            elif g["year"]:
                value = g["year"]
        except ValueError:  # 30 février 2024, 31/02/2024: not a date
            if invalid is not None:
                invalid.append(text[start:end])
            continue
        out.append(DateMention(start, end, text[start:end], value, relative))
    return out


def infer_reference(text: str, *, today: dt.date | None = None) -> dt.date | None:
    """The latest full date the text states (day, month and year written, or a weekday that
    pins the year); None when it states none. Month-only dates ("mai 2023") are not used:
    they bound the document's date from below, they do not give it."""
    full = [m.value for m in find_dates(text, reference=None, today=today)
            if m.value and len(m.value) == 10]
    return max(dt.date.fromisoformat(v) for v in full) if full else None


_CACHE: dict[tuple[str, str | None], ReferenceDate | None] = {}
_CACHE_LOCK = threading.Lock()


def reference_date(
    key: str, meta_date: str | None, text: Callable[[], str]
) -> ReferenceDate | None:
    """A document's reference date: its metadata date, else inferred from its text.

    `key` identifies the document's content (its sha256); `text` is called only when the
    reference is not cached and there is no metadata date. A month-only metadata date
    ('2024-03') stands for the last day of that month.
    """
    cache_key = (key, meta_date)
    with _CACHE_LOCK:
        if cache_key in _CACHE:
            return _CACHE[cache_key]
    ref: ReferenceDate | None = None
    if meta_date and parse_iso(meta_date):
        ref = ReferenceDate(meta_date, bounds(meta_date)[1], inferred=False)
    else:
        body = text()
        date = infer_reference(body)
        if date is not None:
            ref = ReferenceDate(date.isoformat(), date, inferred=True)
        else:
            months = [m.value for m in find_dates(body) if m.value and len(m.value) == 7
                      and not m.relative]
            if months:
                floor = bounds(max(months))[0]
                ref = ReferenceDate(floor.isoformat()[:7], floor, inferred=True,
                                    lower_bound=True)
    with _CACHE_LOCK:
        if len(_CACHE) > 65536:
            _CACHE.clear()
        _CACHE[cache_key] = ref
    return ref
