"""What `search` asks PostgreSQL: the trigram index looks up the term's rarest trigrams only,
and every candidate row is tested for the whole term.

`search_text LIKE '%category07%'` makes pg_trgm's GIN index read the posting list of every
trigram of the term and intersect them. In a catalogue where "cat", "ate", ..., "ory" are in
every row, that is a million row pointers decoded per trigram (25 ms of a 38 ms count at 1M
products) to learn what the one rare trigram, "y07", says alone (5 ms); a one-row term such as
"product 123456" took 19 ms to look up, 0.6 ms through "123" and "456" alone. So the index is
asked for the rare trigrams only (`search_text LIKE '%y07%'`: a row holding the term holds each
of its substrings, so the candidates are a superset), and `strpos(search_text, term) <> 0`
keeps the rows that hold the whole term: a plain substring test, cheaper per row than the
LIKE it replaces in a scan in page order (27 ms instead of 42 for the first 10,001 matches of
a broad term). Written `<> 0`, not `> 0`: the planner takes an inequality on an expression
it has no statistics for as keeping a third of the rows, `<>` as keeping nearly all, so its
estimate stays the rare trigrams' own, and it still scans in page order for a deep page of a
broad term (with `> 0` it sorted every candidate instead: 282 ms).

Which trigrams are rare is read from the planner's own sample of the column (`pg_stats`: the
histogram bounds ANALYZE keeps, 1,001 values at the column's statistics target of 1000),
cached per app for SAMPLE_TTL_SECONDS. The sample only steers the lookup: whatever it says,
the rows matched are the same. A term whose every trigram is in most rows is tested on its own
(an index lookup would return nearly every row); without statistics (a table never analyzed)
the whole term goes to the index, as a plain LIKE.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, text
from sqlalchemy.sql.elements import ColumnElement

from project.database import contains
from project.extensions import db
from project.products.models import Product

SAMPLE_TTL_SECONDS = 600.0
# Trigrams looked up: the rarest, then more (MAX_TRIGRAMS in all) while the candidates the
# sample predicts are more than LOOKUP_WORTH_ROWS and the next trigram is in at most
# RARE_SHARE of the sample's rows. Each LIKE costs the planner ~0.2 ms (it tests the pattern on
# the 1,001 sampled values), about what rechecking 200 rows costs, and a common trigram's
# posting list costs more to read than it saves. None when even the rarest is in more than
# COMMON_SHARE of the rows.
MAX_TRIGRAMS = 3
LOOKUP_WORTH_ROWS = 200
RARE_SHARE = 0.01
COMMON_SHARE = 0.5
# pg_trgm makes trigrams of runs of letters and digits; an ASCII one is a letter or digit in
# every locale, so three of them in a row in the term are a trigram of every row holding it.
_WORD = re.compile(r"[a-z0-9]{3,}")
_SAMPLE_SQL = text(
    "SELECT array_to_string(coalesce(histogram_bounds::text::text[], '{}')"
    " || coalesce(most_common_vals::text::text[], '{}'), chr(10)), "
    " cardinality(coalesce(histogram_bounds::text::text[], '{}'))"
    " + cardinality(coalesce(most_common_vals::text::text[], '{}')),"
    " (SELECT reltuples FROM pg_class WHERE oid = 'products'::regclass)"
    " FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'products'"
    " AND attname = 'search_text'"
)


class _Sample:
    """The planner's sample of `search_text`, one value per line; how many values, and how
    many rows the table had when it was taken."""

    def __init__(self, values: str, size: int, rows: float):
        self.values = values
        self.size = size
        self.rows = rows
        self.read_at = time.monotonic()
        self._counts: dict[str, int] = {}

    def count(self, trigram: str) -> int:
        """Occurrences of `trigram` in the sample (a row holding it twice counts twice: a
        ranking, not a figure)."""
        if trigram not in self._counts:
            self._counts[trigram] = self.values.count(trigram)
        return self._counts[trigram]

    def share(self, trigram: str) -> float:
        """The share of rows holding `trigram`; one the sample lacks counts as half a row of it."""
        return max(self.count(trigram), 0.5) / self.size


def _sample() -> _Sample | None:
    state: dict[str, Any] = current_app.extensions.setdefault("products_search", {})
    sample = state.get("sample")
    if sample is None or time.monotonic() - sample.read_at > SAMPLE_TTL_SECONDS:
        row = db.session.execute(_SAMPLE_SQL).first()
        sample = _Sample(row[0] or "", int(row[1] or 0), float(row[2] or 0)) if row else _Sample("", 0, 0)
        state["sample"] = sample
    return sample if sample.size else None


def rare_trigrams(term: str, sample: _Sample) -> list[str]:
    """The term's trigrams to look up in the index: its rarest in `sample`, then the next
    rarest while they pay (see LOOKUP_WORTH_ROWS); none when the term has no run of three
    ASCII letters or digits."""
    trigrams = {word[i : i + 3] for word in _WORD.findall(term) for i in range(len(word) - 2)}
    ranked = sorted(trigrams, key=lambda trigram: (sample.count(trigram), trigram))
    chosen = ranked[:1]
    candidates = sample.rows * sample.share(ranked[0]) if ranked else 0.0
    for trigram in ranked[1:MAX_TRIGRAMS]:
        if candidates <= LOOKUP_WORTH_ROWS or sample.share(trigram) > RARE_SHARE:
            break
        chosen.append(trigram)
        candidates *= sample.share(trigram)
    return chosen


def matches(term: str, dialect: str) -> ColumnElement[bool]:
    """Products whose search text holds `term` (lower-cased already)."""
    column = Product.search_text
    sample = _sample() if dialect == "postgresql" else None
    if sample is None:
        return contains(column, term)
    trigrams = rare_trigrams(term, sample)
    holds = func.strpos(column, term) != 0
    if trigrams and sample.share(trigrams[0]) > COMMON_SHARE:
        return holds
    return and_(*(column.like(f"%{trigram}%") for trigram in trigrams), holds)
