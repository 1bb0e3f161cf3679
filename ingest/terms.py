"""Content words: what a text is about, for scoring passages and sentences against a question.

Lower-cased words without the stop words of the text's language, single letters or short
numbers, crudely stemmed so "volcanoes" meets "volcano". Used by the store's hybrid ranking and
by the chat's relevance floor, instant answer and checks: one notion of "the question's words"
everywhere.

In other languages than English: the stop words are those of the language the text is in
(worked out from its script, and for Latin and Cyrillic text from which language's function
words it uses), so a French "son" is dropped but an English "son" is kept. Text written without
spaces between words (Chinese, Japanese, Korean, Thai) gives its character pairs (triples for
Thai) as words, so 組版 in a question meets 組版 inside a sentence; Arabic is normalised (short
vowels and tatweel dropped, alef and yeh forms unified, the article ال and a joined و/ب/ف/ك/ل
taken off), so الغذاء meets غذاء.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Iterator, Sequence

from ingest import scripts

_WORD = re.compile(r"\w+", re.UNICODE)


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text` (keeps long word lists readable)."""
    return frozenset(text.split())


# Words that carry no topic: a question sharing only these with a passage is not about it.
STOPWORDS = word_set(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each else ever
    few for from further get got had has have having he her here hers herself him himself his how
    i if in into is it its itself just let like made make many may me might more most much must
    my myself no nor not now of off on once one only or other ought our ours ourselves out over
    own per please same say said shall she should so some such tell than that the their theirs
    them themselves then there these they this those through to too under until up upon us use
    used very was we were what whats when where which while who whom whose why will with would
    yes yet you your yours yourself yourselves
    know explain describe give list show find anything something thing things kind sort way ways
    define defined defines definition
    """
)
# The function words of other languages Kiwix and Gutenberg ship most, by language code.
OTHER_STOPWORDS: dict[str, frozenset[str]] = {
    "fr": word_set(
        """
        le la les un une des du de et est en que qui dans pour pas au aux ce cet cette ces il
        elle ils elles on nous vous je tu se sa son ses leur leurs sur par plus ne ou mais avec
        comme été être avoir sont était étaient fait lui dont où quel quelle quels quelles qu
        quoi comment pourquoi quand combien y a ont aussi très sans entre sous
        """
    ),
    "de": word_set(
        """
        der die das den dem des ein eine einer eines einem einen und ist in im zu zum zur von
        vom mit auf für nicht sich es er sie wir ihr ich du an am als auch aus bei dass daß wie
        was wer wo wann warum welche welcher welches oder aber wird werden wurde wurden sind war
        waren hat haben hatte nach vor über unter um nur noch so dann durch gegen ohne sehr
        """
    ),
    "es": word_set(
        """
        el la los las un una unos unas de del y e o u en que es son por para con no se su sus
        lo le les al como más pero fue fueron ser ha han había era eran sobre entre cuando donde
        quién quiénes qué cuál cuáles cómo este esta estos estas ese esa esos esas también muy
        sin hay
        """
    ),
    "it": word_set(
        """
        il lo la i gli le un uno una di del dello della dei degli delle da dal dalla in nel
        nello nella e ed o è sono che chi per con non si suo sua suoi sue al allo alla come più
        ma fu furono essere ha hanno era erano su sul sulla tra fra quando dove quale quali
        questo questa questi queste anche molto senza cosa perché
        """
    ),
    "pt": word_set(
        """
        o a os as um uma uns umas de do da dos das e ou em no na nos nas que é são por para
        com não se seu sua seus suas ao aos à às como mais mas foi foram ser tem têm era eram
        sobre entre quando onde quem qual quais este esta estes estas esse essa isso também
        muito sem porque
        """
    ),
    "nl": word_set(
        """
        de het een en van in is op te dat die voor met zijn niet aan er ook als bij door om
        maar wordt werd werden naar was waren heeft hebben had dan of uit wat wie waar hoe
        welke deze dit
        """
    ),
    "ru": word_set(
        """
        и в во не что он на я с со как а то все всё она так его но да ты к у же вы за бы по
        только ее её мне было вот от меня еще ещё нет о об из ему когда даже ли если уже или ни
        быть был была были него до вас там потом себя ничего ей может они тут где есть для мы
        тебя их чем сам чтобы без кто этот эта это эти того этого этой этом какой какая какие
        один при после над больше через нас про всего них много между является являются также
        """
    ),
    "be": word_set(
        """
        і й ў у не што ён на я з са як а то ўсё яна так яго але ды ты да вы за б па толькі яе
        мне было вось ад мяне яшчэ няма пра ці калі ўжо або быць быў была былі дзе ёсць для мы
        іх чым сам каб без хто гэты гэта гэтыя таго гэтага гэтай які якая якія адзін пры пасля
        над больш праз нас таксама з'яўляецца
        """
    ),
    "uk": word_set(
        """
        і й в у не що він на я з зі як а то все вона так його але та ти до ви за би б по тільки
        її мені було ось від мене ще немає про із чи коли вже або бути був була були де є для
        ми їх чим сам щоб без хто цей ця це ці того цього цієї який яка які один при після над
        більше через нас також
        """
    ),
    "ar": word_set(
        """
        في من على الى عن مع هذا هذه ذلك تلك التي الذي الذين هو هي هم ان كان كانت ما لا لم لن قد
        ثم او و بين كل بعد قبل عند حتى اذا كما اي هل ليس منذ خلال فيه فيها به بها له لها ماذا
        متى اين كيف لماذا
        """
    ),
    "hi": word_set(
        """
        का के की है हैं में से को और पर यह वह ने भी था थे थी हो होता होती होते कि जो एक इस उस
        कर किया किए तो ही या लिए तक साथ बाद अपने अपनी अपना कुछ क्या कौन कब कहाँ कैसे क्यों
        """
    ),
}
_LATIN_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl")
_CYRILLIC_LANGUAGES = ("ru", "be", "uk")
_CYRILLIC = re.compile(f"[{scripts.CYRILLIC}]")
_ARABIC = re.compile(f"[{scripts.ARABIC}]")
_DEVANAGARI = re.compile(f"[{scripts.DEVANAGARI}]")
_SEGMENTED_RUN = re.compile(
    f"(?P<cjk>[{scripts.CJK}]+)|(?P<hangul>[{scripts.HANGUL}]+)|(?P<unspaced>[{scripts.UNSPACED}]+)"
)
_HIRAGANA = re.compile(f"[{scripts.HIRAGANA}]")
_NEEDS_TERMS = re.compile(
    f"[{scripts.CJK}{scripts.HANGUL}{scripts.UNSPACED}{scripts.ARABIC}"
    f"{scripts.CYRILLIC}{scripts.DEVANAGARI}]"
)


def _longest_first(endings: str) -> tuple[tuple[int, frozenset[str]], ...]:
    """The endings grouped by length, longest first: a word is looked up once per length (a
    few set lookups) instead of being compared with every ending (Russian passages: 0.5 ms
    each with 47 endswith calls a word, bench/terms_size.py)."""
    words = endings.split()
    lengths = sorted({len(w) for w in words}, reverse=True)
    return tuple((n, frozenset(w for w in words if len(w) == n)) for n in lengths)


# Case and number endings of Russian, Ukrainian and Belarusian nouns and adjectives, and of
# Hindi (Marathi, Nepali) ones, longest first: a light stemmer for the keyword index, so that
# Кремля finds Кремль and लड़कों finds लड़का (LanceDB's tokenizer stems English only here).
_CYRILLIC_ENDINGS = _longest_first(
    """иями ями ами иях ях ах ией ей ой ий ый ій ая яя ое ее ие ые ую юю ого его ому ему
    ым им ом ем ов ев ью ия ья іх ых их ь а я о е ы и у ю й і"""
)
_DEVANAGARI_ENDINGS = _longest_first("ियों ियां ियाँ ाओं ाएं ाएँ ों ें ां ाँ ीं ी े ा ि ो")
# Arabic: short vowels, shadda, sukun, dagger alef and tatweel go; alef, yeh and teh marbuta
# forms become one letter each, as the same word is spelled every way in real text.
_ARABIC_FOLD = str.maketrans(
    {
        **{chr(c): None for c in range(0x064B, 0x0660)},
        "\u0670": None,
        "\u0640": None,
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
    }  # fmt: skip
)
_ARABIC_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")
# light10's endings, folded (ة is ه): the plurals and duals, "her", the nisba (عربية, عربي),
# the feminine; "ا" last: the plural's first. One is taken off, when three letters are left.
_ARABIC_SUFFIXES = ("ات", "ون", "ين", "ان", "ها", "يه", "ه", "ي", "ا")


def stopwords(language: str) -> frozenset[str]:
    """The stop words of `language` (a code such as "fr"); English for one not listed."""
    return OTHER_STOPWORDS.get(language, STOPWORDS)


_SCRIPT_LANGUAGES = (  # a script that names its language, in the order they are told apart
    (re.compile(f"[{scripts.HIRAGANA}\u30a0-\u30ff]"), "ja"),  # kana: Japanese, even with Han
    (re.compile(f"[{scripts.HANGUL}]"), "ko"),
    (re.compile(f"[{scripts.CJK}]"), "zh"),
    (re.compile("[\u0e00-\u0e7f]"), "th"),
    (re.compile("[\u0e80-\u0eff]"), "lo"),
    (re.compile("[\u1000-\u109f]"), "my"),
    (re.compile("[\u1780-\u17ff]"), "km"),
    (re.compile("[\u0590-\u05ff]"), "he"),
)


def detect_language(texts: Sequence[str]) -> str:
    """The language most of `texts` are written in (an ISO 639-1 code), for a source whose file
    does not say: by script (kana, Hangul, Han, Thai…), then by function words among those with
    stop words (text_language); "" when the texts hold no words."""
    votes: dict[str, int] = {}
    for text in texts:
        if not scripts.WORD.search(text):
            continue
        lang = script_language(text) or text_language(text)
        votes[lang] = votes.get(lang, 0) + 1
    return max(votes, key=lambda code: votes[code]) if votes else ""


def script_language(text: str) -> str:
    """The language a text's writing system tells ("ja" for kana, "ar" for Arabic script, one
    of the Cyrillic languages by its function words…); "" for text in the Latin alphabet (or
    without letters), whose script does not tell it: a question of a few words seldom has the
    function words to tell it by."""
    if text.isascii():
        return ""
    lang = next((code for pattern, code in _SCRIPT_LANGUAGES if pattern.search(text)), "")
    if lang:
        return lang
    if _CYRILLIC.search(text) or _ARABIC.search(text) or _DEVANAGARI.search(text):
        return text_language(text)
    return ""


def text_language(text: str, words: set[str] | frozenset[str] | None = None) -> str:
    """The language of `text` among those with stop words: by script, then by the function
    words it uses most; "en" when nothing says otherwise. `words`: its lower-cased words, when
    the caller has them already."""
    if words is None:
        words = set(scripts.WORD.findall(text.lower()))
    if text.isascii():
        candidates: tuple[str, ...] = _LATIN_LANGUAGES
    elif _CYRILLIC.search(text):
        candidates = _CYRILLIC_LANGUAGES
    elif _ARABIC.search(text):
        return "ar"
    elif _DEVANAGARI.search(text):
        return "hi"
    else:
        candidates = _LATIN_LANGUAGES
    best, hits = candidates[0], 0
    for lang in candidates:
        n = len(words & stopwords(lang))
        if n > hits:
            best, hits = lang, n
    return best


def content_words(text: str, language: str | None = None) -> set[str]:
    """The normalised topic words of `text`: no stop words of its language, no single
    characters, crude English stems (and for French, German, Spanish, Italian, Portuguese and
    Dutch each word's light stem too, without accents and plural endings: latin_stem);
    character pairs where words are not spaced; Arabic folded. `language` analyses the text as
    that language's instead of the one its words point to (a keyword-like question has no
    function words to tell it by)."""
    lowered = text.lower()
    segmented = arabic = False
    if lowered.isascii():
        raw_words = set(_WORD.findall(lowered))
    else:
        lowered = unicodedata.normalize("NFKC", lowered)
        segmented = scripts.SEGMENTED.search(lowered) is not None
        arabic = _ARABIC.search(lowered) is not None
        if arabic:
            lowered = lowered.translate(_ARABIC_FOLD)
        raw_words = set(scripts.WORD.findall(lowered))
    language = language or text_language(text, raw_words)
    stop = stopwords(language)
    latin = language in LATIN_STEMMED
    words = set()
    for raw in raw_words:
        if segmented and _SEGMENTED_RUN.search(raw):
            words.update(_pieces(raw))
            continue
        if arabic and raw not in stop and _ARABIC.search(raw):
            raw = _arabic_stem(raw)
            root = _arabic_root(raw)
            if root:
                words.add(root)
        if not _is_content_word(raw, stop):
            continue
        words.add(stem(raw))
        if latin and raw.isalpha():
            # Both forms: a question whose language shows (function words) meets the passage's
            # other number through the light stem; a bare keyword question, read as English,
            # meets the words as it always did.
            words.add(latin_stem(raw, language))
    return words


def _is_content_word(raw: str, stop: frozenset[str]) -> bool:
    """Whether a (stemmed where its script is) word counts as a topic word: not a stop word,
    not a single character, not a number under three digits."""
    return not (len(raw) < 2 or raw in stop or raw.isdigit() and len(raw) < 3)


def covered(asked: set[str], text: str, language: str) -> int:
    """How many of `asked` (content_words of a question, as `language` has them) are among
    content_words(text, language): the same count, found without analysing every word of
    `text` where that is safe. A hybrid search asks this of every candidate passage, and
    analysing whole passages was a tenth of its time at 10 M passages (bench/scale.py)."""
    if not asked:
        return 0
    lowered = text.lower()
    if not lowered.isascii() or language in LATIN_STEMMED:
        return len(asked & content_words(text, language))
    # stem() cuts at most four letters and adds back at most two, so a word whose stem is
    # `a` begins with all of `a` but its last two letters: only such words are looked at.
    stop = stopwords(language)
    found = set()
    for m in _covering(frozenset(asked)).finditer(lowered):
        raw = m.group()
        if not _is_content_word(raw, stop):
            continue
        s = stem(raw)
        if s in asked:
            found.add(s)
    return len(found)


@functools.lru_cache(maxsize=256)
def _covering(asked: frozenset[str]) -> re.Pattern[str]:
    """The words (as _WORD cuts them) that begin as one of `asked` might: see covered."""
    heads = sorted({re.escape(a[: max(1, len(a) - 2)]) for a in asked}, key=len)
    return re.compile(r"\b(?:" + "|".join(heads) + r")\w*", re.UNICODE)


def _pieces(word: str) -> set[str]:
    """The words of a run written without spaces: pairs of Han/kana characters (leaving out
    those with hiragana, the particles and endings), pairs of Hangul syllables (a particle
    joined to a word leaves the word's pairs intact), triples of Thai letters; the rest of the
    run (Latin letters, digits) as it is."""
    return set(_piece_sequence(word, particles=False))


def _piece_sequence(word: str, particles: bool) -> Iterator[str]:
    """_pieces in order, each as often as it occurs; `particles`: hiragana pairs too."""
    pos = 0
    for m in _SEGMENTED_RUN.finditer(word):
        rest = word[pos : m.start()]
        if len(rest) >= 2:
            yield stem(rest)
        pos = m.end()
        run = m.group()
        size = 3 if m.lastgroup == "unspaced" else 2
        if len(run) < size:
            if particles or m.lastgroup != "cjk" or not _HIRAGANA.search(run):
                yield run
            continue
        for i in range(len(run) - size + 1):
            piece = run[i : i + size]
            if not particles and m.lastgroup == "cjk" and _HIRAGANA.search(piece):
                continue
            yield piece
    rest = word[pos:]
    if len(rest) >= 2:
        yield stem(rest)


def index_terms(text: str, languages: Collection[str] = (), question: bool = False) -> str:
    """`text` as the words a keyword index needs where LanceDB's English analysis falls short:
    for the scripts its word tokenizer cannot cut or stem (it takes a run of Chinese or
    Japanese for one word, an Arabic word with its article and vowels for another word, and
    Кремля for another word than Кремль) — Han, kana and Hangul as character pairs, Thai, Lao,
    Myanmar and Khmer as letter triples, Arabic folded and lightly stemmed, Cyrillic and
    Devanagari words without their case and number endings — and, when `languages` (the
    text's, or for a question those of the sources searched) include French, German, Spanish,
    Italian, Portuguese or Dutch, every Latin-script word without its accents, its plural and
    gender endings and the language's function words (latin_stem), once per such language. In
    order, repeats kept (BM25 counts them), separated by spaces; "" when the text needs none of
    it (the main keyword index reads it well). An Arabic word of a broken-plural shape gives its
    light stem and its singular's letters (_arabic_root); in a `question` only the latter, so a
    passage that has the word itself does not count it twice against one that has its other
    number."""
    latin = sorted({code for code in map(base_language, languages) if code in LATIN_STEMMED})
    other_scripts = not text.isascii() and _NEEDS_TERMS.search(text) is not None
    if not latin and not other_scripts:
        return ""
    if len(latin) == 1 and not other_scripts:  # the common case: a French or German passage
        code = latin[0]
        stop = stopwords(code)
        words = scripts.WORD.findall(unicodedata.normalize("NFKC", text.lower()))
        return " ".join([latin_stem(w, code) for w in words if w not in stop])
    lowered = unicodedata.normalize("NFKC", text.lower())
    arabic = _ARABIC.search(lowered) is not None
    if arabic:
        lowered = lowered.translate(_ARABIC_FOLD)
    out: list[str] = []
    spoken = tuple(latin)
    for raw in scripts.WORD.findall(lowered):
        terms = _word_terms(raw, arabic, spoken, question)
        if terms is None:
            out.extend(_piece_sequence(raw, particles=True))
        else:
            out.extend(terms)
    return " ".join(out)


@functools.lru_cache(maxsize=1 << 18)  # a big archive repeats its common words in every passage
def _word_terms(
    raw: str, arabic: bool, latin: tuple[str, ...], question: bool
) -> tuple[str, ...] | None:
    """index_terms of one word of a text that needs them (None: a run to cut in pieces)."""
    if _SEGMENTED_RUN.search(raw):
        return None
    if arabic and _ARABIC.search(raw):
        light = _arabic_stem(raw)
        root = _arabic_root(light)
        if root:
            return (root,) if question else (light, root)
        return (light,)
    if _CYRILLIC.search(raw):
        return (_strip_ending(raw, _CYRILLIC_ENDINGS, 3),)
    if _DEVANAGARI.search(raw):
        return (_strip_ending(raw, _DEVANAGARI_ENDINGS, 2),)
    if latin:
        return tuple(
            sorted({latin_stem(raw, code) for code in latin if raw not in stopwords(code)})
        )
    return (stem(raw),)


# Light stemmers for the Latin-script languages whose words LanceDB's English analysis does not
# stem: accents folded, then the plural and gender endings taken off (chevaux/cheval,
# ciudades/ciudad, Häuser/Haus, libri/libro, nações/nação), so a question meets its passage's
# other number; no derivational suffixes (a light stemmer: it conflates little it should not).
LATIN_STEMMED = frozenset({"fr", "de", "es", "it", "pt", "nl"})
_LATIN_RULES: dict[str, tuple[tuple[tuple[str, ...], ...], ...]] = {
    # Phases of (ending, replacement[, letters to keep]): in each phase the first ending whose
    # replacement leaves that many letters (3 unless said) is replaced; the plural goes first,
    # then a gender or thematic vowel.
    "fr": ((("eaux", "eau"), ("aux", "al"), ("s", ""), ("x", "")), (("e", ""),)),
    "es": ((("ces", "z"), ("es", ""), ("s", "")), (("a", ""), ("o", ""), ("e", ""))),
    "pt": (
        (("oes", "ao"), ("aes", "ao"), ("ns", "m"), ("es", ""), ("s", "")),
        (("a", ""), ("o", ""), ("e", "")),
    ),
    "it": ((("chi", "c"), ("ghi", "g"), ("che", "c"), ("ghe", "g")),)
    + ((("a", ""), ("e", ""), ("i", ""), ("o", "")),),
    "de": (
        (("ss", "ss"), ("s", "", "5")),  # a genitive s (Berlins), not Haus or Prozess
        (("ern", ""), ("eln", "el"), ("en", ""), ("er", ""), ("em", ""), ("es", ""), ("e", "")),
    ),
    "nl": ((("eren", ""), ("en", ""), ("els", "el"), ("ens", "en"), ("ers", "er"), ("'s", "")),),
}
# Dutch spelling changes at the end of a stem once its ending is gone (huizen -> huis).
_DUTCH_FINAL = {"z": "s", "v": "f"}
_LATIN_LETTERS = str.maketrans({"ß": "ss", "œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d"})


def base_language(code: str) -> str:
    """ "fr" of "fr", "fre", "fra", "fr-CA", "fr_FR": the ISO 639-1 code of a metadata language
    (ZIM metadata names it in ISO 639-3, EPUB in BCP 47)."""
    first = re.split(r"[\s,;_-]+", code.strip().lower())[0] if code.strip() else ""
    return _ISO_639_3.get(first, first)


_ISO_639_3 = {
    "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "ita": "it", "por": "pt",
    "nld": "nl", "dut": "nl", "eng": "en", "rus": "ru", "ukr": "uk", "bel": "be", "hin": "hi",
    "ara": "ar", "jpn": "ja", "zho": "zh", "chi": "zh", "kor": "ko", "tha": "th",
}  # fmt: skip


@functools.lru_cache(maxsize=1 << 18)
def latin_stem(word: str, language: str) -> str:
    """A lower-cased word of `language` (one of LATIN_STEMMED) without accents and without its
    plural or gender ending, when at least three letters are left."""
    folded = "".join(
        c
        for c in unicodedata.normalize("NFKD", word.translate(_LATIN_LETTERS))
        if not unicodedata.combining(c)
    )
    for phase in _LATIN_RULES.get(language, ()):
        for ending, replacement, *keep in phase:
            least = int(keep[0]) if keep else 3
            if folded.endswith(ending) and len(folded) - len(ending) + len(replacement) >= least:
                folded = folded[: -len(ending)] + replacement
                break
    if language == "nl" and folded[-1:] in _DUTCH_FINAL and len(folded) > 3:
        folded = folded[:-1] + _DUTCH_FINAL[folded[-1]]
    return folded


def _strip_ending(word: str, endings: tuple[tuple[int, frozenset[str]], ...], keep: int) -> str:
    """`word` without the longest of `endings` it has, when `keep` letters are left."""
    for length, same_length in endings:
        if len(word) - length >= keep and word[-length:] in same_length:
            return word[:-length]
    return word


def _arabic_stem(word: str) -> str:
    """A folded Arabic word (see _ARABIC_FOLD) without its article or a joined
    conjunction/preposition, and without the endings that only mark case or number — the
    accusative alif of an indefinite noun (دورًا: دور), the sound plurals and duals, a joined
    "her" (a light stemmer in the manner of Larkey's light10) — when enough of it is left."""
    for prefix in _ARABIC_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            word = word[len(prefix) :]
            break
    for suffix in _ARABIC_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _arabic_root(word: str) -> str | None:
    """The singular's letters of a light-stemmed (_arabic_stem) word of a common broken-plural
    pattern, which no ending-stripping reaches: أفعال (اولاد: ولد, اسباب: سبب), فعال/فعول/فعيل
    (رجال: رجل, قلوب: قلب, طريق: طرق — so كتاب meets its plural كتب, مدينة meets مدن), أفعلة
    and أفعل (اسلحة: سلح as سلاح gives, اشهر: شهر, اكبر: كبر as كبير gives), and
    the five-letter plurals with an alif after two letters (مساجد: مسجد, مدارس: مدرس — the
    light stem of مدرسة). None when the word has none of these shapes. It is a term beside the
    light stem, never instead: the exact word still counts most."""
    n = len(word)
    if n == 5 and word[0] == "ا" and word[3] == "ا":
        return word[1:3] + word[4]
    if n == 4 and word[2] in "اوي":
        return word[:2] + word[3]
    if n == 4 and word[0] == "ا":
        return word[1:]
    if n == 5 and word[2] == "ا":
        return word[:2] + word[3:]
    return None


@functools.lru_cache(maxsize=1 << 18)  # a search stems the same words in hundreds of passages
def stem(word: str) -> str:
    """A deliberately crude English stem, enough to match 'volcanoes' with 'volcano'."""
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("es", ""),
        ("s", ""),
        ("ing", ""),
        ("ed", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: len(word) - len(suffix)] + keep
    return word
