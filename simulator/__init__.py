"""Songsmith provider simulator: OpenRouter, kie.ai Suno and kie.ai Market nano-banana over one WSGI app."""
