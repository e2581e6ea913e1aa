"""WAV synthesis: a short melody + bass + click track whose tempo follows the style and pitch the title."""

from __future__ import annotations

import array
import hashlib
import io
import math
import random
import re
import sys
import wave
from operator import add, mul

SAMPLE_RATE = 22050
TARGET_SECONDS = 5.0
DEFAULT_BPM = 110
SLOW_BPM = 70
FAST_BPM = 150
_FULL_SCALE = 32000.0  # amplitudes below are fractions of this; per-voice peaks sum to <= 1
_TABLE = 512  # approximate wavetable length; whole periods are fitted so pitch error stays < 2 cents

_SLOW_WORDS = (
    "slow",
    "ballad",
    "ambient",
    "lofi",
    "lo-fi",
    "chill",
    "downtempo",
    "lullaby",
    "meditation",
    "adagio",
    "doom",
    "drone",
)
_FAST_WORDS = (
    "fast",
    "punk",
    "drum and bass",
    "drum & bass",
    "dnb",
    "edm",
    "hardcore",
    "techno",
    "trance",
    "speed metal",
    "thrash",
    "hyperpop",
    "breakbeat",
    "jungle",
    "gabber",
)
_SCALES = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 4, 7, 9),  # major pentatonic
    (0, 3, 5, 7, 10),  # minor pentatonic
    (0, 2, 3, 5, 7, 9, 10),  # dorian
)


def _first_position(text: str, words: tuple[str, ...]) -> int | None:
    positions = [m.start() for w in words if (m := re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text))]
    return min(positions) if positions else None


def choose_tempo(style: str) -> int:
    """An explicit "NNN bpm" wins; otherwise the first slow or fast keyword decides; else 110."""
    text = style.lower()
    explicit = re.search(r"(\d{2,3})\s*bpm", text)
    if explicit:
        return max(40, min(220, int(explicit.group(1))))
    slow, fast = _first_position(text, _SLOW_WORDS), _first_position(text, _FAST_WORDS)
    if slow is not None and (fast is None or slow < fast):
        return SLOW_BPM
    if fast is not None:
        return FAST_BPM
    return DEFAULT_BPM


def _beats(bpm: int) -> int:
    return max(2, round(TARGET_SECONDS * bpm / 60))


def plan_duration(style: str) -> float:
    """Length in seconds of the WAV that render_wav will produce for this style."""
    bpm = choose_tempo(style)
    return round(_beats(bpm) * round(SAMPLE_RATE * 60 / bpm) / SAMPLE_RATE, 2)


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _cycle(freq: float, amp: float, harmonic: float, triangle: bool) -> list[float]:
    periods = max(1, round(_TABLE * freq / SAMPLE_RATE))
    length = max(2, round(SAMPLE_RATE * periods / freq))
    step = 2 * math.pi * periods / length
    if triangle:
        return [amp * (2 / math.pi) * math.asin(math.sin(step * i)) for i in range(length)]
    return [amp * (math.sin(step * i) + harmonic * math.sin(2 * step * i)) for i in range(length)]


class _Mixer:
    """Adds enveloped wavetable notes into one float buffer using C-level map() arithmetic.

    Amplitudes are in int16 units and the voices' summed peak stays below full scale, so the buffer
    converts to PCM without a normalisation pass.
    """

    def __init__(self, total: int) -> None:
        self.buffer = [0.0] * total
        self._envelopes: dict[tuple[int, float], list[float]] = {}

    def _envelope(self, n: int, decay: float) -> list[float]:
        key = (n, decay)
        if key not in self._envelopes:
            attack = min(110, n // 4)  # ~5 ms
            self._envelopes[key] = [
                (j / attack if j < attack else 1.0) * math.exp(-decay * j / SAMPLE_RATE) for j in range(n)
            ]
        return self._envelopes[key]

    def note(self, start: int, n: int, freq: float, amp: float, decay: float, **shape: float) -> None:
        n = min(n, len(self.buffer) - start)
        if n <= 0:
            return
        harmonic = shape.get("harmonic", 0.0)
        table = _cycle(freq, amp * _FULL_SCALE / (1 + harmonic), harmonic, bool(shape.get("triangle", 0)))
        samples = (table * (n // len(table) + 1))[:n]
        voiced = map(mul, samples, self._envelope(n, decay))
        self.buffer[start : start + n] = list(map(add, self.buffer[start : start + n], voiced))

    def pcm16(self) -> array.array:
        return array.array("h", map(int, self.buffer))


def render_wav(style: str, title: str, variant: int = 1) -> bytes:
    """16-bit mono 22050 Hz WAV, ~4-6 s; tempo from the style, key and scale seeded from the title."""
    bpm = choose_tempo(style)
    beat = round(SAMPLE_RATE * 60 / bpm)
    beats = _beats(bpm)
    seed = hashlib.sha256(f"{title}\x00{variant}".encode()).digest()
    rng = random.Random(seed)
    scale = _SCALES[seed[0] % len(_SCALES)]
    root = 57 + seed[1] % 11
    mix = _Mixer(beats * beat)
    degree = rng.randrange(len(scale))
    for b in range(beats):
        start = b * beat
        chord_root = root + (0, 7, 5, 9)[(b // 4) % 4] - 24
        mix.note(start, beat, _midi_hz(chord_root), 0.3, 3.0, triangle=1)
        mix.note(start, 330, 1800.0 if b % 4 else 2400.0, 0.2, 60.0)
        parts = 2 if rng.random() < 0.3 else 1
        for p in range(parts):
            degree = max(0, min(2 * len(scale) - 1, degree + rng.choice((-2, -1, -1, 1, 1, 2, 0))))
            octave, step = divmod(degree, len(scale))
            pitch = root + 12 * octave + scale[step]
            length = beat // parts
            mix.note(start + p * length, length, _midi_hz(pitch), 0.45, 4.0, harmonic=0.25)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        pcm = mix.pcm16()
        if sys.byteorder == "big":
            pcm.byteswap()
        wav.writeframes(pcm.tobytes())
    return out.getvalue()
