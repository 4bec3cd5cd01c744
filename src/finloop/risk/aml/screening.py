"""Name normalisation, transliteration, blocking and fuzzy scoring for sanctions screening (pure).

- ``normalize``: Cyrillic and Greek letters transliterated (a small table, ``_TRANSLIT``), then Unicode
  NFKD with combining marks dropped (é → e), lower case, punctuation to spaces, whitespace collapsed.
- ``blocks``: the blocking keys of a name: the first three letters of every token of two letters or more.
  A screened name is scored only against watchlist entries sharing at least one key with it (the keys
  are stored per entry, so the candidate set is one indexed query, not a scan of the list). A typo in
  the first three letters of every token escapes the block; that is the price of not comparing
  against every entry.
- ``score``: the best over the entry's name and aliases of ``max(token_sort_ratio, subset)``, where
  ``subset`` (for queries of two tokens or more) compares the query with the candidate's tokens that best
  match each query token, times 0.95 — so "Vladimir Putin" matches "PUTIN, Vladimir Vladimirovich"
  (extra middle names) but a single common first name does not match every entry carrying it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz

DEFAULT_THRESHOLD = 88
SUBSET_PENALTY = 0.95

_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya", "і": "i", "ї": "yi", "є": "ye", "ґ": "g", "ў": "u",
}
_GREEK = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i", "κ": "k",
    "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s", "ς": "s", "τ": "t",
    "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
}
#: Greek digraphs read as one Latin sound (ELOT 743), replaced before the letter table.
_DIGRAPHS = (("ου", "ou"), ("γγ", "ng"), ("γκ", "gk"))
_TRANSLIT = str.maketrans({**_CYRILLIC, **_GREEK})
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    # Greek accents are combining marks too, so transliterate after stripping them.
    for digraph, latin in _DIGRAPHS:
        text = text.replace(digraph, latin)
    text = text.translate(_TRANSLIT)
    text = text.replace("ß", "ss").replace("æ", "ae").replace("ø", "o").replace("ł", "l").replace("đ", "d")
    return " ".join(_NON_WORD.split(text)).strip()


def blocks(normalized: str) -> set[str]:
    return {token[:3] for token in normalized.split() if len(token) >= 2}


def _subset(query: str, candidate: str) -> float:
    q_tokens = query.split()
    c_tokens = candidate.split()
    if len(q_tokens) < 2 or len(c_tokens) <= len(q_tokens):
        return 0.0
    remaining = list(c_tokens)
    picked = []
    for token in q_tokens:
        best = max(remaining, key=lambda c: fuzz.ratio(token, c))
        picked.append(best)
        remaining.remove(best)
    return fuzz.token_sort_ratio(query, " ".join(picked)) * SUBSET_PENALTY


def name_score(query: str, candidate: str) -> float:
    """0–100 between two normalised names."""
    if not query or not candidate:
        return 0.0
    return max(fuzz.token_sort_ratio(query, candidate), _subset(query, candidate))


def best_score(query: str, names: Iterable[str]) -> tuple[float, str]:
    best, matched = 0.0, ""
    for name in names:
        s = name_score(query, name)
        if s > best:
            best, matched = s, name
    return best, matched


def rank(query: str, candidates: Sequence[tuple[str, Sequence[str]]], threshold: float) -> list[tuple[str, float, str]]:
    """``(id, score, matched normalised name)`` for the candidates scoring at or above ``threshold``, best
    first; ``candidates`` are ``(id, normalised names)``."""
    out = []
    for ident, names in candidates:
        score, matched = best_score(query, names)
        if score >= threshold:
            out.append((ident, round(score, 1), matched))
    out.sort(key=lambda item: (-item[1], item[0]))
    return out
