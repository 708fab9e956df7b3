"""Worked examples of date finding and resolution (qa/temporal.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from qa import temporal
from qa.errors import InvalidQuestionError

REF = dt.date(2024, 11, 20)  # an article of 20 November 2024 (a Wednesday)
TODAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize(
    ("text", "span", "value"),
    [
        # explicit dates keep their own year
        ("Le 1er novembre 2024, en visite", "1er novembre 2024", "2024-11-01"),
        ("Le 23 octobre 2024, lors du sommet", "23 octobre 2024", "2024-10-23"),
        ("en juin 2024", "juin 2024", "2024-06"),
        ("March 18, 2024", "March 18, 2024", "2024-03-18"),
        ("the 30 October 2024 test", "30 October 2024", "2024-10-30"),
        ("fin octobre 2024", "fin octobre 2024", "2024-10"),
        ("2024-11-01", "2024-11-01", "2024-11-01"),
        ("31/12/2023", "31/12/2023", "2023-12-31"),
        ("dissolution de l'URSS en 1991.", "1991", "1991"),
        # relative: 'dernier' is strictly before the reference
        ("En juin dernier, Poutine", "juin dernier", "2024-06"),
        ("en novembre dernier", "novembre dernier", "2023-11"),  # same month: last year's
        ("le 18 octobre dernier", "18 octobre dernier", "2024-10-18"),
        ("le 25 novembre dernier", "25 novembre dernier", "2023-11-25"),  # after the ref
        ("l'an dernier", "l'an dernier", "2023"),
        ("l’année dernière", "l’année dernière", "2023"),
        ("last year", "last year", "2023"),
        ("cette année", "cette année", "2024"),
        ("last June", "last June", "2024-06"),
        # no year: the latest such day up to a week after the reference
        ("le 8 novembre", "8 novembre", "2024-11-08"),
        ("le 22 décembre", "22 décembre", "2023-12-22"),
        ("depuis fin août", "fin août", "2024-08"),
        # a weekday pins the year
        ("le lundi 18 novembre", "lundi 18 novembre", "2024-11-18"),
        ("Monday, November 18", "Monday, November 18", "2024-11-18"),
    ],
)
def test_resolution_against_a_reference(text: str, span: str, value: str) -> None:
    [m] = temporal.find_dates(text, reference=REF, today=TODAY)
    assert text[m.start : m.end] == m.text == span
    assert m.value == value


@pytest.mark.parametrize(
    "text",
    ["30 février 2024", "31/02/2024", "résolution 1718", "the 3024 games", "3 000 soldats",
     "this may be", "les deux pays", "2024-13-01"],
)
def test_not_dates(text: str) -> None:
    assert temporal.find_dates(text, reference=REF, today=TODAY) == []


def test_without_reference_relative_dates_stay_unresolved() -> None:
    """'le 18 octobre dernier' in an undated text has no year; a weekday still pins one:
    18 November fell on a Monday in 2024, the latest such year before today (2026-12-01)."""
    found = temporal.find_dates("le 18 octobre dernier puis le lundi 18 novembre",
                                reference=None, today=TODAY)
    assert [(m.text, m.value) for m in found] == [
        ("18 octobre dernier", None), ("lundi 18 novembre", "2024-11-18")]


def test_reference_from_metadata_else_latest_full_date_inferred() -> None:
    text = "En mai 2023 ... Le 23 octobre 2024, ... le 30 octobre 2024 ... juin dernier"
    ref = temporal.reference_date("sha-a", None, lambda: text)
    assert ref is not None and (ref.value, ref.inferred) == ("2024-10-30", True)
    meta = temporal.reference_date("sha-a", "2024-03", lambda: text)
    assert meta is not None and (meta.date, meta.inferred) == (dt.date(2024, 3, 31), False)
    # a month-only date does not give the document's date, only a lower bound of it
    low = temporal.reference_date("sha-b", None, lambda: "En mai 2023, rien.")
    assert low is not None and low.lower_bound
    assert temporal.reference_date("sha-d", None, lambda: "Rien de daté.") is None


def test_bounds_and_overlaps() -> None:
    assert temporal.bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert temporal.overlaps("2024-06", "2024-06-19")
    assert temporal.overlaps("2024", "2024-06")
    assert not temporal.overlaps("2024-06", "2024-10-18")
    assert temporal.parse_iso("2024-02-30") is None
    assert temporal.parse_iso("2024-02") == "2024-02"


def test_month_only_text_gives_a_lower_bound() -> None:
    """No full date, but 'mai 2023': the text was written after May 2023, so '18 octobre
    dernier' is the first 18 October from then on."""
    text = "en mai 2023 ... le 18 octobre dernier ... fin août"
    ref = temporal.reference_date("sha-c", None, lambda: text)
    assert ref is not None and ref.lower_bound and ref.inferred
    found = temporal.find_dates(text, after=ref.date)
    assert [m.value for m in found] == ["2023-05", "2023-10-18", "2023-08"]


@pytest.mark.parametrize(
    ("text", "bad"),
    [("le 30 février 2024", ["30 février 2024"]), ("on 31 April", ["31 April"]),
     ("le 31/02/2024", ["31/02/2024"]), ("le 29 février 2024", []), ("le 18 mars", [])],
)
def test_impossible_dates(text: str, bad: list[str]) -> None:
    assert temporal.impossible_dates(text) == bad


@pytest.mark.parametrize(("value", "valid"), [
    ("2024-03", "2024-03"), ("2024-02-29", "2024-02-29"), ("2023-02-29", None),
    ("2024-13", None), ("2024", None), ("2024-3", None), ("2024-03-01T10:00", None),
    ("", None), ("２０２４-03", "２０２４-03"),  # \d is Unicode, as the parsers always read it
])
def test_valid_date_is_a_document_date(value: str, valid: str | None) -> None:
    """A document's date is a real month or day; a bare year or a timestamp is not one."""
    assert temporal.valid_date(value) == valid


def test_parse_date_is_a_filter_day() -> None:
    assert temporal.parse_date("2024-02-29", "date_from") == dt.date(2024, 2, 29)
    assert temporal.parse_date(dt.date(2024, 1, 1), "date_to") == dt.date(2024, 1, 1)
    assert temporal.parse_date(None, "date_to") is None
    for bad in ["2024-02-30", "2024-03", "yesterday", 20240301, "2024-03-01 "]:
        with pytest.raises(InvalidQuestionError, match=r"date_to must be a date YYYY-MM-DD"):
            temporal.parse_date(bad, "date_to")  # type: ignore[arg-type]
