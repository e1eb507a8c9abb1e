"""Which code page reads a file's own non-ASCII lines best: every candidate's reading scored as text
(letters by the word they sit in, punctuation by its place), accepted only by a margin over every other
reading, a near tie put to charset-normalizer or stopped on."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

from sales_serving.contract.export.alphabets import east_asian_common, letter_commonness
from sales_serving.contract.export.errors import SETTING_PREFIX, cut, export_error

# Typographic punctuation of Windows-1252 (0x80-0x9F) and where each sits in real text.
OPENING_QUOTES = "‘“„‚«‹"
CLOSING_QUOTES = "’”»›"
DASHES = "–—"
CURRENCY_CHARS = "€£¥$"
NO_BREAK_SPACES = "\u00a0\u202f"

# Our own detector on purpose: charset-normalizer (and chardet) read the real Kaggle file, whose only
# non-ASCII bytes are DOS code page 850 letters, as another code page and turn `Berguvsvägen` into
# `Berguvsv„gen`. Scoring each candidate by whether its characters sit where such characters sit in words
# gets both DOS letters and Windows-1252 punctuation right.


class EvidenceLine(NamedTuple):
    """A line of the file holding non-ASCII bytes: the evidence every candidate encoding is judged on."""

    line: int
    text: bytes


# The quote that closes each opening quote (German `„…“`, French `« … »`, English `“…”`).
CLOSERS = {"‘": "’", "“": "”", "„": "“”", "‚": "‘’", "«": "»", "‹": "›"}
# Letters an apostrophe runs into in contractions (`’s`, `n’t`, `’d`, `’ll`, `I’m`, `’re`, `’ve`).
CONTRACTION_LETTERS = "stdlmrv"


def _plausibility(char: str, text: str, at: int) -> float:
    """How natural a non-letter `char` is at `at` in `text` (a line); letters are judged by their word
    (`_word_score`). Typographic punctuation scores 1 where it sits in text: an opening quote before a
    word (or a space, `« mot »`) with its closing quote later in the line; a closing quote after a word,
    not before another; an apostrophe after a letter that ends the word, starts a contraction (`’s`) or
    follows a one-letter word (`O’Hara`, `l’été`); a dash between spaces or digits; an ellipsis after a
    word; a currency sign by a number; a no-break space between non-spaces, not inside a word.
    Anything else scores 0.
    """
    before = text[at - 1] if at else " "
    after = text[at + 1] if at + 1 < len(text) else " "
    if char in OPENING_QUOTES:
        closed = any(c in text[at + 1 :] for c in CLOSERS[char])
        return float(not before.isalnum() and (after.isalnum() or after.isspace()) and closed)
    if char == "’":  # a closing single quote or an apostrophe (`Children’s`)
        if before in ".!?":
            return 1.0
        if not before.isalnum():
            return 0.0
        one_letter = at < 2 or not text[at - 2].isalnum()
        return float(not after.isalnum() or after in CONTRACTION_LETTERS or one_letter)
    if char in CLOSING_QUOTES:  # never followed by a letter: `k”p` is `köp` in another code page
        return float((before.isalnum() or before in ".!?") and not after.isalnum())
    if char in DASHES:
        return float((before.isspace() or before.isdigit()) and (after.isspace() or after.isdigit()))
    if char == "…":
        return float(before.isalnum() and not after.isalnum())
    if char in CURRENCY_CHARS:
        return float(before.isdigit() or after.isdigit() or (before.isspace() and after.isspace()))
    if char in NO_BREAK_SPACES:  # a thousands separator (`2 871,00`) or a space that must not break
        return float(
            not before.isspace() and not after.isspace() and not (before.isalpha() and after.isalpha())
        )
    return 0.0


# Scripts a word may mix: Japanese writes kanji and kana in one run, Korean hangul and hanja. Halfwidth
# katakana (legacy Japanese systems) stand alone: mixed with kanji they are another code page's letters.
_SCRIPT_GROUPS = {
    "HIRAGANA": "CJK",
    "KATAKANA": "CJK",
    "HANGUL": "CJK",
    "FULLWIDTH": "CJK",
}
# Scripts whose letters are judged by their case pattern alone; letters of no script here or above
# (`ª º µ`, symbols Unicode calls letters) are not text but for the ordinal indicators after a number.
_CASED_SCRIPTS = {"CYRILLIC", "GREEK", "HEBREW", "ARABIC", "THAI", "HALFWIDTH"}
ORDINAL_INDICATORS = "ºª"
# Letter frequency alone is weak evidence: a word whose accented letters one language writes scores at
# least LATIN_FLOOR, and the rest by how common they are, so frequency alone outweighs MARGIN only at
# about ten times as common (`São` in Windows-1252 against Romanian `Săo` in Windows-1250 is a tie).
LATIN_FLOOR = 0.5


@cache
def _frequent_letters() -> dict[str, frozenset[str]]:
    """Per script, the letters among the 26 most frequent of some language written in it
    (charset-normalizer's frequency tables): `Москва` is all frequent Russian letters, its bytes read
    as Greek (`Μξρκβΰ`) are not."""
    from charset_normalizer.constant import FREQUENCIES

    letters: dict[str, set[str]] = {}
    for table in FREQUENCIES.values():
        for char in table:
            if char.isalpha() and not char.isascii() and _script(char) in ("CYRILLIC", "GREEK"):
                letters.setdefault(_script(char), set()).add(char)
    return {script: frozenset(chars) for script, chars in letters.items()}


# Latin words hold at most two accented letters in a row (`ções`); more is another script read as Latin
# (`Ìîñêâà` is `Москва` in Windows-1251 read as Windows-1252).
MAX_LATIN_RUN = 2
# charset-normalizer breaks a tie between non-Latin readings only on this many bytes of distinct
# non-ASCII runs or more.
MIN_LIBRARY_BYTES = 16
NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
SHOWN_BELOW = 0.3  # how far below the best a reading may score and still be shown in a tie's message
MAX_RENDERINGS = 8  # distinct readings of the line a tie stops on, shown in its message
# Letter frequency alone decides only at about 25 times as common (`snabbköp` Swedish `ö` 1.3% against
# Mac Roman's French `snabbkîp` `î` 0.05% decides; `Œuvre` `œ` 0.02% against Slovak `Ľuvre` `ľ` 0.4%
# does not).
FREQUENCY_MARGIN = 0.16
MARGIN = 0.1  # how far the best candidate's score must lie above the runner-up's (scores run 0..1)
# A letter that sits in a word as words are written is weaker evidence than punctuation in its place:
# most high bytes are letters in most code pages (`’ …` in Windows-1252 are `ĺ ů` in DOS 852), while a
# closing quote after a word or an ellipsis at its end is what only the right code page produces.
LETTER_WEIGHT = 0.7


def _script(char: str) -> str:
    if char.isascii():
        return "LATIN"
    first = unicodedata.name(char, "UNKNOWN").split(" ")[0]
    return _SCRIPT_GROUPS.get(first, first)


def _word_score(word: str, encoding: str | None = None) -> float:
    """How a word reads, 0..1: its letters' quality times its case pattern's.

    Quality: for Latin, LATIN_FLOOR plus the rest by how common its accented letters are in a language
    `encoding` writes (`alphabets.letter_commonness`; 0 when no such language has them all, or for more
    than MAX_LATIN_RUN accented letters in a row); for CJK, the share of common characters
    (`alphabets.east_asian_common`); for Cyrillic and Greek, the share of letters among a language's
    most frequent; 1 for the other scripts in _CASED_SCRIPTS; 0 for mixed scripts and letters of no
    script. Case: 1 for lower, upper or title case, 0.25 for a pattern no word has
    (`лНЯЙ`)."""
    scripts = {_script(c) for c in word}
    if len(scripts) > 1:
        return 0.0
    (script,) = scripts
    if script == "LATIN":
        run = longest = 0
        for char in word:
            run = run + 1 if not char.isascii() else 0
            longest = max(longest, run)
        first = "" if word[0].isascii() or len(word) == 1 else word[0]  # a lone letter is an initial
        common = letter_commonness("".join(c for c in word if not c.isascii()), encoding, first, word)
        quality = (
            0.0 if longest > MAX_LATIN_RUN or common is None else LATIN_FLOOR + (1 - LATIN_FLOOR) * common
        )
    elif script == "CJK":
        quality = sum(east_asian_common(c, encoding) for c in word) / len(word)
    elif script in ("CYRILLIC", "GREEK"):
        frequent = _frequent_letters().get(script, frozenset())
        quality = sum(c.lower() in frequent for c in word) / len(word)
    else:
        quality = float(script in _CASED_SCRIPTS)
    cased = [c for c in word if c.islower() or c.isupper()]
    if not cased or word.islower() or word.isupper() or (cased[0].isupper() and "".join(cased[1:]).islower()):
        return quality
    return 0.25 * quality


def text_score(lines: Sequence[str], encoding: str | None = None) -> float:
    """How well decoded `lines` read as text in `encoding` (None: any), from 0 to 1: the mean over their
    non-ASCII characters of `_word_score` for letters (by the word they sit in, at LETTER_WEIGHT; 0 for
    an accented letter between two digits, `2á871`) and `_plausibility` for the rest."""
    score = total = 0.0
    for text in lines:
        for word in re.finditer(r"[^\W\d_]+|[^\w\s]|\s", text):
            chunk = word.group()
            non_ascii = sum(not c.isascii() for c in chunk)
            if not non_ascii:
                continue
            total += non_ascii
            at, end = word.start(), word.end()
            before = text[at - 1] if at else " "
            after = text[end] if end < len(text) else " "
            if chunk in ORDINAL_INDICATORS:
                score += float(before.isdigit())  # `1º`, `2ª`
            elif chunk[0].isalpha():
                if not (before.isdigit() and after.isdigit()):
                    score += non_ascii * _word_score(chunk, encoding) * LETTER_WEIGHT
            else:
                score += _plausibility(chunk, text, at)
    return score / total if total else 1.0


class Reading(NamedTuple):
    """One candidate encoding's reading of the evidence lines (None where a line does not decode)."""

    encoding: str
    lines: tuple[str | None, ...]
    score: float


C1_CONTROLS = re.compile("[\u0080-\u009f]")


def _reading(evidence: Sequence[EvidenceLine], name: str) -> Reading:
    """`name`'s reading of the evidence, scored by `text_score`; -1 when a line does not decode or
    decodes to a C1 control character (what ISO-8859 code pages make of Windows' 0x80-0x9F letters and
    punctuation: `Łód\x9f` is `Łódź` in Windows-1250 read as ISO-8859-2), which no text holds."""
    decoded = []
    for item in evidence:
        try:
            decoded.append(item.text.decode(name))
        except UnicodeDecodeError:
            decoded.append(None)
    readable = None not in decoded and not any(C1_CONTROLS.search(t) for t in decoded if t is not None)
    score = text_score([t for t in decoded if t is not None], name) if readable else -1.0
    return Reading(codecs.lookup(name).name, tuple(decoded), score)


def _differing_line(first: Reading, second: Reading, evidence: Sequence[EvidenceLine]) -> int:
    return next(i for i, (a, b) in enumerate(zip(first.lines, second.lines, strict=True)) if a != b)


def _consult_library(evidence: Sequence[EvidenceLine], names: Sequence[str]) -> str | None:
    """charset-normalizer's pick among `names` for the evidence bytes, or None. Consulted only to break
    a near tie of our own scores: it was measured wrong on the real Kaggle file (cp850 read as
    Windows-1252, `Berguvsv„gen`) and on Windows-1252 punctuation (`Children’s Way…` read as cp852,
    `Childrenĺs Wayů`), so it never overrides a clear decision."""
    from charset_normalizer import from_bytes

    best = from_bytes(b"\n".join(e.text for e in evidence), cp_isolation=list(names)).best()
    if best is None:
        return None
    chosen = codecs.lookup(best.encoding).name
    return chosen if chosen in {codecs.lookup(n).name for n in names} else None


def decide_code_page(
    path: Path, evidence: Sequence[EvidenceLine], candidates: Sequence[str]
) -> tuple[str, str]:
    """(encoding, evidence sentence) among `candidates` for the `evidence` lines (not UTF-8): every
    candidate that decodes them all is scored by `text_score`; the best must beat every other reading by
    MARGIN on the lines where the two differ. A near tie of two is put to charset-normalizer; when it
    does not settle it, raises ExportError naming the top two with one line rendered in each and the
    setting."""
    readings = sorted((_reading(evidence, name) for name in candidates), key=lambda r: -r.score)
    best = readings[0]
    if best.score < 0:
        raise export_error(
            path,
            f"no candidate encoding ({', '.join(candidates)}) decodes every line with non-ASCII bytes",
            line=evidence[0].line,
            setting=encoding_advice(evidence),
        )
    # Each other reading is compared with the best on the lines where the two differ only: a few letters
    # that tell two code pages apart must not drown in the many they read alike.
    contest = [
        (r, *_scores_where_different(best, r)) for r in readings[1:] if r.score >= 0 and r.lines != best.lines
    ]
    close = [c for c in contest if c[1] - c[2] < _margin(best, c[0])]
    if not close:
        nearest = max(contest, key=lambda c: c[2], default=None)
        against = (
            f"; next {nearest[0].encoding}, {nearest[2]:.2f} against {nearest[1]:.2f} where they differ"
            if nearest
            else ""
        )
        name = _first_alike(best, readings, candidates)
        alike = f"; {best.encoding} reads them alike" if name != best.encoding else ""
        return (
            name,
            f"{name} reads {len(evidence)} non-ASCII line(s) best ({best.score:.2f}{against}{alike})",
        )
    runner, mine, theirs = max(close, key=lambda c: c[2])
    tied = [best.encoding, *(c[0].encoding for c in close)]
    # Only where no Latin reading is in the tie and the evidence is more than a few bytes: there
    # charset-normalizer's language models help (CJK, Cyrillic, Greek); between Latin code pages it was
    # measured wrong (see `_consult_library`), and on a word or two it picks among equals.
    latin = any(
        _script(ch) == "LATIN" and not ch.isascii()
        for r in (best, *(c[0] for c in close))
        for ch in "".join(t for t in r.lines if t)
    )
    # Counted over distinct runs: one word on every row is still one word.
    runs = {run for e in evidence for run in NON_ASCII_RUN.findall(e.text)}
    enough = sum(map(len, runs)) >= MIN_LIBRARY_BYTES
    chosen = _consult_library(evidence, tied) if enough and not latin else None
    if chosen is not None:
        return chosen, (
            f"{best.encoding} {mine:.2f} and {', '.join(c[0].encoding for c in close)} read alike where they "
            f"differ ({runner.encoding} {theirs:.2f}); charset-normalizer chose {chosen}"
        )
    at = _differing_line(best, runner, evidence)
    line = evidence[at].line
    # One rendering per distinct reading of that line (code pages that agree on it are one answer).
    renderings: dict[str, list[str]] = {}
    # The tied readings first, then any other within SHOWN_BELOW of the best: the right one may score
    # below a tie of two wrong ones (`Œuvre` under `Ľuvre` and `źuvre`).
    nearby = [r for r in readings if r.score >= best.score - SHOWN_BELOW]
    for reading in (best, runner, *(c[0] for c in close), *nearby):
        text = _around_difference(
            reading.lines[at], best.lines[at] if reading is not best else runner.lines[at]
        )[0]
        names = renderings.setdefault(text, [])
        if reading.encoding not in names:
            names.append(reading.encoding)
    shown = list(renderings.items())[:MAX_RENDERINGS]
    raise export_error(
        path,
        f"the text reads about as well as {best.encoding} ({mine:.2f}: {cut(shown[0][0])}) and as "
        f"{runner.encoding} ({theirs:.2f}: {cut(shown[1][0])})"
        + "".join(f", and as {', '.join(names)} ({cut(text)})" for text, names in shown[2:])
        + (f", and {len(renderings) - len(shown)} other reading(s)" if len(renderings) > len(shown) else ""),
        line=line,
        setting=f"{SETTING_PREFIX}ENCODING to the one whose text line {line} should read: "
        + ", ".join(f"={names[0]} for {cut(text)}" for text, names in shown),
    )


def _first_alike(best: Reading, readings: Sequence[Reading], candidates: Sequence[str]) -> str:
    """The first of `candidates` (their order breaks exact ties) whose reading is the very text of `best`'s.
    Code pages that give the same text differ only in their language tables' scores, so the data is the
    same either way; the name recorded is then the one the order prefers (a cp850 file whose only letter
    is `á`, which cp852 writes alike, stays cp850)."""
    alike = {r.encoding for r in readings if r.score >= 0 and r.lines == best.lines}
    return next((codecs.lookup(n).name for n in candidates if codecs.lookup(n).name in alike), best.encoding)


def encoding_advice(evidence: Sequence[EvidenceLine]) -> str:
    """The ENCODING setting for lines no encoding in use reads: the value among the encodings exports
    come in (the default candidates) that reads them best, with the text it gives the first line."""
    from sales_serving.contract.export.settings import ExportReading

    known = ExportReading.model_fields["candidate_encodings"].default
    readings = sorted((_reading(evidence, name) for name in known), key=lambda r: -r.score)
    if readings[0].score < 0:
        return f"{SETTING_PREFIX}ENCODING to the one the export was written in"
    best = readings[0]
    return (
        f"{SETTING_PREFIX}ENCODING={best.encoding} if line {evidence[0].line} should read "
        f"{cut(_around_difference(best.lines[0], best.lines[0])[0])} (or the one the export was written in)"
    )


def _around_difference(first: str, second: str, context: int = 8) -> tuple[str, str]:
    """The two renderings of a line from a little before the first character where they differ."""
    at = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), 0)
    start = max(0, at - context)
    return first[start:], second[start:]


def _words_all_written(lines: Sequence[str], encoding: str) -> bool:
    """Whether every word with non-ASCII letters in `lines` is Latin and reads as a word of some
    language (`_word_score` above 0)."""
    return all(
        _script(word[-1]) == "LATIN" and _word_score(word, encoding) > 0
        for text in lines
        for word in re.findall(r"[^\W\d_]+", text)
        if not word.isascii() and word not in ORDINAL_INDICATORS
    )


def _margin(best: Reading, other: Reading) -> float:
    """MARGIN, or FREQUENCY_MARGIN where both readings of the lines they differ on are Latin words of
    some language: then only how common the letters are tells them apart, which needs more."""
    pairs = [(a, b) for a, b in zip(best.lines, other.lines, strict=True) if a != b and a and b]
    both_words = _words_all_written([a for a, _ in pairs], best.encoding) and _words_all_written(
        [b for _, b in pairs], other.encoding
    )
    return FREQUENCY_MARGIN if both_words else MARGIN


def _scores_where_different(first: Reading, second: Reading) -> tuple[float, float]:
    pairs = [(a, b) for a, b in zip(first.lines, second.lines, strict=True) if a != b]
    return (
        text_score([a for a, _ in pairs], first.encoding),
        text_score([b for _, b in pairs], second.encoding),
    )
