"""Cover art: a gradient-and-shapes PNG/JPEG seeded by the prompt, with the title drawn on it."""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re

from PIL import Image, ImageDraw, ImageFont

# kie / Gemini 2.5 flash aspect ratios -> pixels (contract 1.7 / 3.1); "auto" and unknown -> 1:1.
SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
_DRAFT = 2  # shapes are drawn at 1/_DRAFT scale and upscaled; text is drawn at full size


def title_from_prompt(prompt: str) -> str:
    """The quoted title the image_prompt generator puts in prompts, else the first few words."""
    quoted = re.search(r"[\"“']([^\"”']{2,80})[\"”']", prompt)
    if quoted:
        return quoted.group(1).strip()
    words = re.findall(r"[A-Za-z0-9']+", prompt)
    return " ".join(words[:4]).title() or "Untitled"


def _palette(rng: random.Random) -> list[tuple[int, int, int]]:
    hue = rng.random()
    colours = []
    for offset, sat, val in ((0.0, 0.7, 0.35), (0.08, 0.8, 0.85), (0.5, 0.6, 0.95), (0.58, 0.5, 0.6)):
        r, g, b = colorsys.hsv_to_rgb((hue + offset + rng.uniform(-0.04, 0.04)) % 1.0, sat, val)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def _background(size: tuple[int, int], rng: random.Random, colours: list) -> Image.Image:
    corners = Image.new("RGB", (2, 2))
    corners.putdata([colours[0], colours[1], colours[3], colours[0]] if rng.random() < 0.5 else colours[:4])
    return corners.resize(size, Image.Resampling.BILINEAR)


def _shapes(image: Image.Image, rng: random.Random, colours: list) -> None:
    draw = ImageDraw.Draw(image, "RGBA")
    w, h = image.size
    for _ in range(rng.randint(5, 9)):
        r, g, b = rng.choice(colours)
        fill = (r, g, b, rng.randint(60, 150))
        x, y, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.08, 0.35) * min(w, h)
        if rng.random() < 0.6:
            draw.ellipse((x - s, y - s, x + s, y + s), fill=fill)
        else:
            points = [(x + rng.uniform(-s, s), y + rng.uniform(-s, s)) for _ in range(rng.randint(3, 5))]
            draw.polygon(points, fill=fill)
    for i in range(rng.randint(2, 4)):
        y = h * (0.2 + 0.15 * i)
        draw.line((0, y, w, y + rng.uniform(-h / 4, h / 4)), fill=(255, 255, 255, 70), width=max(2, w // 200))


def _title(image: Image.Image, title: str) -> None:
    draw = ImageDraw.Draw(image)
    w, h = image.size
    size = max(24, min(w // 11, int(w * 1.6 / max(len(title), 1))))
    font = ImageFont.load_default(size=size)
    box = draw.textbbox((0, 0), title, font=font)
    x, y = (w - (box[2] - box[0])) / 2, h * 0.78
    draw.text((x + size / 18, y + size / 18), title, font=font, fill=(0, 0, 0))
    draw.text((x, y), title, font=font, fill=(255, 255, 255))


def render_cover(
    prompt: str, title: str | None = None, *, image_size: str = "1:1", fmt: str = "png"
) -> bytes:
    size = SIZES.get(image_size, SIZES["1:1"])
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    colours = _palette(rng)
    draft = _background((size[0] // _DRAFT, size[1] // _DRAFT), rng, colours)
    _shapes(draft, rng, colours)
    image = draft.resize(size, Image.Resampling.BILINEAR)
    _title(image, (title or title_from_prompt(prompt))[:60])
    out = io.BytesIO()
    if fmt in ("jpeg", "jpg"):
        image.save(out, "JPEG", quality=85)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()
