"""Deterministic text generation: song options, album-cover image prompts, and plain replies."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

STYLE_MAX, TITLE_MAX, LYRICS_MAX = 200, 80, 3000

GENRES = (
    "drum and bass", "bossa nova", "hip hop", "lo-fi", "lofi", "synthwave", "jazz", "blues", "rock",
    "pop", "punk", "metal", "folk", "country", "rap", "r&b", "soul", "funk", "disco", "edm", "house",
    "techno", "trance", "dubstep", "ambient", "classical", "orchestral", "cinematic", "reggae", "latin",
    "gospel", "indie", "grunge", "ska", "k-pop", "trap", "swing", "bluegrass", "salsa", "tango",
    "shoegaze", "emo", "opera", "chiptune", "ballad", "lullaby", "waltz", "hardcore",
)  # fmt: skip
MOODS = (
    "happy", "sad", "melancholic", "melancholy", "dreamy", "energetic", "upbeat", "dark", "romantic",
    "nostalgic", "angry", "calm", "chill", "epic", "uplifting", "slow", "fast", "mellow", "hopeful",
    "haunting", "playful", "moody", "peaceful", "intense", "groovy", "warm", "bittersweet", "triumphant",
)  # fmt: skip
INSTRUMENTS = (
    "acoustic guitar", "electric guitar", "female vocals", "male vocals", "piano", "guitar", "violin",
    "cello", "strings", "saxophone", "sax", "trumpet", "drums", "bass", "synth", "organ", "harp", "flute",
    "ukulele", "banjo", "harmonica", "choir", "808", "brass", "accordion", "mandolin",
)  # fmt: skip
_STOP = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "from", "by",
        "about", "into", "over", "under", "is", "are", "was", "were", "be", "been", "it", "its", "this",
        "that", "these", "those", "my", "your", "our", "their", "his", "her", "me", "you", "we", "they", "i",
        "as", "so", "very", "just", "than", "then", "some", "any", "all", "each", "every", "three", "two",
        "one", "write", "song", "songs", "option", "options", "lyrics", "lyric", "title", "titles", "style",
        "styles", "json", "return", "reply", "respond", "object", "field", "fields", "please", "create",
        "generate", "make", "give", "must", "should", "include", "includes", "format", "concept", "idea",
        "theme", "tags", "comma", "separated", "verse", "chorus", "bridge", "outro", "characters",
        "chars", "words", "max", "maximum", "least", "most", "using", "use", "based", "output",
        "only", "plain", "text", "schema", "key", "keys", "valid", "string", "strings", "array", "list",
        "following", "provide", "distinct", "different", "suno", "music", "track", "mood", "genre", "genres",
        "instrument", "instruments", "bpm",
    }
)  # fmt: skip
_FALLBACK_TAGS = (
    ("pop", "upbeat", "synth"),
    ("indie", "dreamy", "guitar"),
    ("folk", "warm", "acoustic guitar"),
)
_TWISTS = ("acoustic", "cinematic", "lo-fi", "uplifting", "dark", "orchestral", "groovy", "dreamy")


def rng_for(text: str) -> random.Random:
    return random.Random(hashlib.sha256(text.encode()).digest())


def _found(text: str, vocabulary: tuple[str, ...]) -> list[str]:
    lower = text.lower()
    hits = [
        (m.start(), w) for w in vocabulary if (m := re.search(rf"(?<![\w&-]){re.escape(w)}(?![\w&-])", lower))
    ]
    return [w for _, w in sorted(hits)]


def keywords(text: str) -> list[str]:
    seen: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text):
        w = word.lower().strip("'-")
        if len(w) >= 3 and w not in _STOP and w not in seen:
            seen.append(w)
    return seen


def style_tags(text: str) -> list[str]:
    tags = _found(text, GENRES) + _found(text, MOODS) + _found(text, INSTRUMENTS)
    tags += re.findall(r"\b\d{2,3}\s*bpm\b", text.lower())
    return list(dict.fromkeys(tags))


def _clip_tags(tags: list[str]) -> str:
    style = ""
    for tag in tags:
        candidate = f"{style}, {tag}" if style else tag
        if len(candidate) > STYLE_MAX:
            break
        style = candidate
    return style


def _title(words: list[str], rng: random.Random, n: int) -> str:
    if not words:
        words = ["untitled", "dream"]
    a = words[n % len(words)]
    b = words[(n + 1) % len(words)] if len(words) > 1 else rng.choice(["heart", "light", "road"])
    pattern = ("{a} {b}", "The {a} Song", "{b} of {a}", "Ballad of the {a}", "{a} Tonight")[
        (n + rng.randrange(5)) % 5
    ]
    return pattern.format(a=a.title(), b=b.title())[:TITLE_MAX]


def _lyrics(words: list[str], title: str, rng: random.Random) -> str:
    pool = words or ["night", "light", "road"]

    def w() -> str:
        return rng.choice(pool)

    verse = [
        f"I walk along the {w()}, the {w()} is calling me",
        f"Every {w()} I remember, every {w()} I see",
        f"Underneath the {w()}, we were young and free",
        f"Holding on to {w()} like it's all we'll ever be",
    ]
    chorus = [
        f"Oh, {title.lower()}",
        f"Sing it for the {w()} and the {w()}",
        f"{title}, don't let go",
        f"We'll find our {w()} tonight",
    ]
    verse2 = [
        f"The {w()} keeps turning, the {w()} starts to glow",
        f"Tell me that the {w()} is the only thing we know",
    ]
    sections = ["[Verse]", *verse, "", "[Chorus]", *chorus, "", "[Verse 2]", *verse2, "", "[Chorus]", *chorus]
    return "\n".join(sections)[:LYRICS_MAX]


def content_words(text: str) -> list[str]:
    """Keywords minus genre/mood/instrument vocabulary: the imagery used for titles and lyrics."""
    style_words = {part for tag in (*GENRES, *MOODS, *INSTRUMENTS) for part in tag.split()}
    return [w for w in keywords(text) if w not in style_words]


def song_options(concept: str, count: int = 3) -> list[dict[str, str]]:
    rng = rng_for(concept)
    words = content_words(concept)
    found = style_tags(concept)
    options = []
    for n in range(count):
        tags = list(found) if found else list(_FALLBACK_TAGS[n % 3])
        if n:
            tags.append(_TWISTS[(n + rng.randrange(len(_TWISTS))) % len(_TWISTS)])
        title = _title(words, rng, n)
        if any(o["title"] == title for o in options):
            title = f"{title} ({'II' if n == 1 else 'III'})"
        options.append(
            {
                "title": title,
                "style": _clip_tags(list(dict.fromkeys(tags))),
                "lyrics": _lyrics(words, title, rng),
            }
        )
    return options


def _field(text: str, name: str) -> str:
    match = re.search(rf"(?im)^\s*{name}\s*[:=]\s*(.+)$", text)
    return match.group(1).strip().strip("\"'") if match else ""


def image_prompt(text: str) -> str:
    title = _field(text, "title") or " ".join(keywords(text)[:3]).title() or "Untitled"
    style = _field(text, "style") or ", ".join(style_tags(text)[:4]) or "modern pop"
    imagery = [w for w in content_words(text) if w not in title.lower()][:5]
    scene = ", ".join(imagery) if imagery else "abstract shapes and light"
    return (
        f'Square album cover art for the song "{title}". Genre and mood: {style}. '
        f"Imagery: {scene}. Bold composition, rich colour gradients, soft film grain, "
        "no text other than the title."
    )[:1500]


def plain_reply(text: str) -> str:
    words = keywords(text)[:6]
    topic = ", ".join(words) if words else "your message"
    return f"Simulated reply about {topic}. This text comes from the Songsmith provider simulator."


def wrong_types(name: str) -> dict[str, Any]:
    if name == "image_prompt":
        return {"prompt": 42}
    return {
        "options": [
            {"title": 123, "style": ["pop", "rock"], "lyrics": None},
            "not an object",
            {"title": True},
        ]
    }
