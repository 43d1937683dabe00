"""A constructed set of adversarial examples with known validity (Morris et al. 2020's failure
kinds): meaning-preserving word swaps and small typos are valid; antonym swaps, unrelated words,
part-of-speech breaks and heavy character damage are not. Used by tests/test_validity.py."""

from __future__ import annotations

# (original, perturbed, valid?, the recipe level that would make such a change)
CASES: list[tuple[str, str, bool, str]] = [
    # valid: synonym swaps keeping the part of speech
    ('the film is a wonderful piece of work', 'the movie is a wonderful piece of work', True, 'word'),
    ('a truly terrible script and awful acting', 'a truly dreadful script and awful acting', True, 'word'),
    ('the story is simple but very moving', 'the story is simple but very touching', True, 'word'),
    ('an intelligent and funny comedy', 'an clever and funny comedy', True, 'word'),
    ('the cast looks bored throughout the movie', 'the cast seems bored throughout the movie', True, 'word'),
    ('it is a big mess from start to finish', 'it is a huge mess from start to finish', True, 'word'),
    # valid: one small typo
    ('a charming and delightful little film', 'a charming and delihgtful little film', True, 'char'),
    ('the plot is dull and predictable', 'the plot is dul and predictable', True, 'char'),
    ('one of the best movies of the year', 'one of the bset movies of the year', True, 'char'),
    ('the acting is superb in every scene', 'the acting is suberb in every scene', True, 'char'),
    # invalid: antonym or unrelated swaps that change the meaning
    ('the film is a wonderful piece of work', 'the film is a horrible piece of work', False, 'word'),
    ('a truly terrible script and awful acting', 'a truly excellent script and lovely acting', False, 'word'),
    ('the story is simple but very moving', 'the banana is purple but very sideways', False, 'word'),
    ('one of the best movies of the year', 'one of the worst movies of the year', False, 'word'),
    # invalid: part of speech broken by the swap
    ('the cast looks bored throughout the movie', 'the cast looks bored throughout the quickly', False, 'word'),
    ('it is a big mess from start to finish', 'it is a big run from start to finish', False, 'word'),
    ('an intelligent and funny comedy', 'an intelligent and funny slowly', False, 'word'),
    # invalid: character damage beyond the budget
    ('a charming and delightful little film', 'a chxrmxng and dxlxghtfxl lxttlx fxlm', False, 'char'),
    ('the plot is dull and predictable', 'the plot is dzzl and przdzctzblz', False, 'char'),
    ('the acting is superb in every scene', 'the actqqqng is sqqperb in every scene', False, 'char'),
]  # fmt: skip
