"""Counterfactual swaps on real evaluation texts: gender words and first names replaced by
their counterparts (he <-> she, Maria <-> Jose, names across race/ethnicity groups).

Each rule swaps in one pass, so "he told her" becomes "she told his" and never back again.
Word swaps keep the case of the original ("He" -> "She"). Names are matched in their display
case only ("Maria", not "maria") to spare lower-case words; a capitalised common word that is
also a first name (e.g. at the start of a sentence) can still be swapped, a known limit.
Names are paired by frequency rank within their census cell: the i-th female white name pairs
with the i-th male white name (gender swap) and with the i-th female black name (race swap).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.bias.names import GENDERS, RACES, NameTable

# (female, male) word pairs; the reverse map is built from the same list. 'her' is ambiguous
# (object or possessive): it maps to 'his', the more frequent reading in reviews.
GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("she", "he"),
    ("her", "his"),
    ("hers", "his"),
    ("herself", "himself"),
    ("woman", "man"),
    ("women", "men"),
    ("girl", "boy"),
    ("girls", "boys"),
    ("mother", "father"),
    ("mothers", "fathers"),
    ("daughter", "son"),
    ("daughters", "sons"),
    ("sister", "brother"),
    ("sisters", "brothers"),
    ("wife", "husband"),
    ("wives", "husbands"),
    ("girlfriend", "boyfriend"),
    ("queen", "king"),
    ("princess", "prince"),
    ("aunt", "uncle"),
    ("niece", "nephew"),
    ("lady", "gentleman"),
    ("ladies", "gentlemen"),
    ("actress", "actor"),
    ("actresses", "actors"),
    ("female", "male"),
    ("mom", "dad"),
    ("mum", "dad"),
    ("grandmother", "grandfather"),
    ("granddaughter", "grandson"),
    ("bride", "groom"),
    ("heroine", "hero"),
    ("waitress", "waiter"),
    ("mrs", "mr"),
    ("ms", "mr"),
    ("madam", "sir"),
)
MALE_TO_FEMALE_OVERRIDES = {"his": "her", "him": "her", "mr": "ms", "dad": "mom"}


def gender_word_map() -> dict[str, str]:
    out: dict[str, str] = {}
    for female, male in GENDER_PAIRS:
        out.setdefault(female, male)
        out.setdefault(male, female)
    out.update(MALE_TO_FEMALE_OVERRIDES)
    return out


@dataclass(frozen=True)
class SwapRule:
    """A named counterfactual: case-insensitive word map and exact-case name map."""

    kind: str
    words: Mapping[str, str]
    names: Mapping[str, str]

    def pattern(self) -> re.Pattern[str]:
        keys = sorted({*self.words, *(n.lower() for n in self.names)}, key=len, reverse=True)
        return re.compile(
            r"(?<![\w'])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w'])", re.IGNORECASE
        )


def _match_case(source: str, target: str) -> str:
    if source.isupper() and len(source) > 1:
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def apply_swap(
    text: str, rule: SwapRule, pattern: re.Pattern[str] | None = None
) -> tuple[str, list[list[str]]]:
    """The swapped text and the [from, to] replacements made (empty when nothing matched)."""
    done: list[list[str]] = []

    def replace(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in rule.names:
            new = rule.names[token]
        elif token.lower() in rule.words:
            new = _match_case(token, rule.words[token.lower()])
        else:  # a name in the wrong case: left alone
            return token
        done.append([token, new])
        return new

    return (pattern or rule.pattern()).sub(replace, text), done


def swap_rules(table: NameTable | None) -> list[SwapRule]:
    """'gender' (words and names) and, with a name table, one 'race:<r>' rule per race."""
    cells = table.cells if table is not None else {}
    gender_names: dict[str, str] = {}
    for race in RACES:
        female, male = cells.get(("female", race), ()), cells.get(("male", race), ())
        for a, b in zip(female, male, strict=False):
            gender_names[a], gender_names[b] = b, a
    rules = [SwapRule(kind="gender", words=gender_word_map(), names=gender_names)]
    if table is None:
        return rules
    for target in RACES:
        names: dict[str, str] = {}
        for gender in GENDERS:
            goal = cells.get((gender, target), ())
            for race in RACES:
                if race == target:
                    continue
                for i, name in enumerate(cells.get((gender, race), ())):
                    if i < len(goal):
                        names[name] = goal[i]
        rules.append(SwapRule(kind=f"race:{target}", words={}, names=names))
    return rules
