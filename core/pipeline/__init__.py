"""The six-step song pipeline: each step is one RQ job that enqueues the next."""

STEPS: tuple[str, ...] = (
    "write_options",
    "choose_option",
    "render_audio",
    "write_image_prompt",
    "render_cover",
    "store",
)

STEP_LABELS: dict[str, str] = {
    "write_options": "Song options (LLM)",
    "choose_option": "Choose an option",
    "render_audio": "Song (Suno)",
    "write_image_prompt": "Image prompt (LLM)",
    "render_cover": "Cover (NanoBanana)",
    "store": "Store and complete",
}


def next_step(step: str) -> str | None:
    i = STEPS.index(step)
    return STEPS[i + 1] if i + 1 < len(STEPS) else None
