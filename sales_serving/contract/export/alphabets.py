"""Which accented letters each language written in a legacy code page uses and how often, and which
East Asian characters are the common ones: the evidence a few non-ASCII letters give about a code page.

A reading of a file's bytes is plausible when each word's accented letters belong to one language that
the code page can write, and more plausible the more often that language uses them: `İstanbul` (Turkish,
the `i` of 8.6% of letters) beats `Ýstanbul` (Icelandic `ý`, 0.2%), `Ærø` (Danish) beats `Ćrř` (no
language writes both `ć` and `ř`).
"""

from __future__ import annotations

import codecs
import math
from functools import cache

# Share of all letters (per cent) of each accented letter in running text, rounded: from the
# letter-frequency tables of Wikipedia's "Letter frequency" article and the alphabets' own articles.
# Only the order of magnitude is used (`letter_commonness`), so rounding does not matter. Romanian is
# written with the cedilla forms (ş ţ) that legacy code pages have; Turkish lists `i` as the lower case of
# its dotted capital `İ`.
LANGUAGE_LETTERS: dict[str, dict[str, float]] = {
    name: {item[0]: float(item[1:]) for item in spec.split()}
    for name, spec in {
        "French": "à0.49 â0.05 æ0.01 ç0.09 è0.27 é1.5 ê0.22 ë0.01 î0.05 ï0.01 ô0.02 ù0.06 û0.06 ü0.01 ÿ0.01 "
        "œ0.02",
        "German": "ä0.58 ö0.44 ü1.0 ß0.31",
        "Spanish": "á0.5 é0.43 í0.73 ñ0.31 ó0.83 ú0.17 ü0.01",
        "Portuguese": "à0.07 á0.12 â0.56 ã0.73 ç0.53 é0.34 ê0.45 í0.13 ó0.3 ô0.64 õ0.04 ú0.21",
        "Italian": "à0.64 è0.26 é0.03 ì0.03 í0.03 ò0.1 ó0.01 ù0.17 ú0.01",
        "Catalan": "à0.7 ç0.3 è0.6 é0.8 í0.5 ï0.1 ò0.5 ó0.6 ú0.2 ü0.05",
        "Dutch": "é0.05 ë0.02 ï0.01 ö0.01 ü0.01",
        "Swedish": "å1.34 ä1.8 ö1.31 é0.02",
        "Danish": "å1.19 æ0.87 ø0.94 é0.02",
        "Norwegian": "å0.99 æ1.0 ø0.94 é0.02",
        "Finnish": "ä3.58 ö0.44 å0.01",
        "Icelandic": "á1.8 æ0.87 ð4.39 é0.65 í1.57 ó0.99 ö0.78 þ1.46 ú0.61 ý0.23",
        "Albanian": "ç0.5 ë8.0",
        "Turkish": "ç1.16 ğ1.13 ı5.11 i8.6 ö0.78 ş1.78 ü1.85 â0.05 î0.01",
        "Polish": "ą0.7 ć0.74 ę1.04 ł2.11 ń0.36 ó0.85 ś0.81 ź0.08 ż0.71",
        "Czech": "á0.87 č0.46 ď0.02 é0.63 ě1.22 í1.64 ň0.01 ó0.02 ř0.38 š0.69 ť0.01 ú0.05 ů0.2 ý1.0 ž0.72",
        "Slovak": "á2.0 ä0.1 č0.9 ď0.2 é0.8 í1.6 ĺ0.01 ľ0.4 ň0.1 ó0.2 ô0.3 ŕ0.01 š0.8 ť0.4 ú0.7 ý1.7 ž0.9",
        "Hungarian": "á3.4 é4.0 í0.6 ó1.0 ö1.0 ő0.9 ú0.3 ü0.5 ű0.1",
        "Slovene": "č1.0 š0.9 ž0.8",
        "Croatian": "č1.0 ć0.6 đ0.2 š0.9 ž0.8",
        "Romanian": "ă4.4 â0.9 î1.4 ş1.4 ţ1.0",
        "Estonian": "ä2.0 õ1.1 ö0.5 ü0.9 š0.01 ž0.01",
        "Lithuanian": "ą0.6 č0.4 ę0.2 ė1.9 į1.1 š1.2 ų1.3 ū0.4 ž0.8",
        "Latvian": "ā4.0 č0.3 ē1.7 ģ0.1 ī1.6 ķ0.2 ļ0.4 ņ0.4 š1.5 ū0.5 ž0.7",
    }.items()
}
# Letters a language never starts a word with: Turkish `ğ` (it lengthens the vowel before it), Czech and
# Slovak `ě ů ý ň ä ĺ ŕ`, Polish `ą ę ń`, Lithuanian `ę ų` (endings). `Ýstanbul` is then Icelandic or
# nothing, `Ęrų` (Danish `Ærø` in Windows-1257) nothing.
NEVER_FIRST = {
    "Icelandic": "ð",
    "Turkish": "ğ",
    "Czech": "ěůýň",
    "Slovak": "äýĺŕň",
    "Polish": "ąęń",
    "Lithuanian": "ęų",
}
# ASCII letters a language's alphabet lacks: a word with accented letters and one of these is not in that
# language (`Baðcýlar` is no Icelandic word: Icelandic writes no `c`).
NOT_WRITTEN = {
    "Icelandic": "cqwz",
    "Turkish": "qwx",
    "Polish": "qvx",
    "Lithuanian": "qwx",
    "Latvian": "qwxy",
}
RARE_PERCENT, COMMON_PERCENT = 0.01, 10.0  # commonness 0 and 1 (a log scale between them)
# A code page writes a language when it has that language's letters but the rarest (French `œ ÿ` are
# not in ISO-8859-1, yet French is written in it).
WRITTEN_PERCENT = 0.05


def _lower(letter: str) -> str:
    return "i" if letter == "İ" else letter.lower()  # Python lowers `İ` to `i` plus a combining dot


@cache
def languages_of(encoding: str | None) -> tuple[str, ...]:
    """The languages whose accented letters (all but the rarest, below WRITTEN_PERCENT; lower case: DOS
    437 writes Spanish without `Á`) `encoding` can write; all of them for None (a Unicode encoding)."""
    if encoding is None:
        return tuple(LANGUAGE_LETTERS)
    name = codecs.lookup(encoding).name
    written = []
    for language, letters in LANGUAGE_LETTERS.items():
        needed = "".join(c for c, share in letters.items() if share >= WRITTEN_PERCENT)
        try:
            needed.encode(name)
        except UnicodeEncodeError:
            continue
        written.append(language)
    return tuple(written)


def letter_commonness(letters: str, encoding: str | None, first: str = "", word: str = "") -> float | None:
    """How common the accented `letters` of one word are, 0..1 (0 at RARE_PERCENT of a language's
    letters, 1 at COMMON_PERCENT, log scale), in the language written in `encoding` that uses them
    most; None when no such language writes them all (a word mixing alphabets: `Ćrř`), starts a word
    with `first` (the word's first letter when accented, NEVER_FIRST) or writes every letter of `word`
    (NOT_WRITTEN)."""
    keys = {_lower(c) for c in letters}
    best = None
    for language in languages_of(encoding):
        table = LANGUAGE_LETTERS[language]
        if not keys <= table.keys() or (first and _lower(first) in NEVER_FIRST.get(language, "")):
            continue
        if any(c in NOT_WRITTEN.get(language, "") for c in word.lower()):
            continue
        scores = [
            min(1.0, max(0.0, math.log(table[k] / RARE_PERCENT) / math.log(COMMON_PERCENT / RARE_PERCENT)))
            for k in keys
        ]
        mean = sum(scores) / len(scores)
        best = mean if best is None else max(best, mean)
    return best


# East Asian standards put their common characters first: GB 2312 level 1 (3,755 hanzi, lead bytes
# B0-D7), JIS X 0208 level 1 (2,965 kanji, Shift-JIS 889F-9872), Big5's frequent hanzi (A440-C67E) and
# KS X 1001's 2,350 hangul syllables. A few Cyrillic or Greek bytes read as East Asian text mostly land
# on the rare ones.
KOREAN_ENCODINGS = frozenset({"euc_kr", "cp949", "johab"})
JAPANESE_ENCODINGS = frozenset(
    {"cp932", "shift_jis", "euc_jp", "iso2022_jp", "shift_jis_2004", "euc_jis_2004"}
)


def _in_range(char: str, encoding: str, low: int, high: int) -> bool:
    try:
        code = char.encode(encoding)
    except UnicodeEncodeError:
        return False
    return len(code) == 2 and low <= int.from_bytes(code, "big") <= high


def east_asian_common(char: str, encoding: str | None = None) -> bool:
    """Whether a CJK character is one of the common ones: kana (in a Japanese `encoding`), a level-1
    hanzi/kanji of GB 2312, JIS X 0208 or Big5, or a KS X 1001 hangul syllable. In a Korean `encoding`
    (EUC-KR) hanzi are not common: Korean names are written in hangul."""
    code = ord(char)
    name = codecs.lookup(encoding).name if encoding is not None else None
    if 0x3040 <= code <= 0x30FF:  # hiragana and katakana: Japanese text only
        return name is None or name in JAPANESE_ENCODINGS
    if 0xAC00 <= code <= 0xD7A3:  # hangul syllables
        return _in_range(char, "euc_kr", 0xB0A1, 0xC8FE)
    if name in KOREAN_ENCODINGS:
        return False
    return (
        _in_range(char, "gb2312", 0xB0A1, 0xD7FE)
        or _in_range(char, "shift_jis", 0x889F, 0x9872)
        or _in_range(char, "big5", 0xA440, 0xC67E)
    )
