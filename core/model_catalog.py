"""The LLM model list for Settings (OpenRouter's models endpoint, cached in Redis) and saving the choice."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

from core.deps import Dependencies
from core.errors import UserError
from core.logs import get_logger
from core.models import AppSetting, User
from core.providers.base import ModelInfo
from core.providers.errors import ProviderError
from core.users import DEFAULT_MODEL_KEY, Actor, default_model

log = get_logger("songsmith.models")
MILLION = Decimal(1_000_000)
MODEL_ID_MAX = 200


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    context_length: int | None = None
    # USD per million tokens (OpenRouter quotes per token); None when unknown, as in the fallback list.
    prompt_per_million: Decimal | None = None
    completion_per_million: Decimal | None = None


@dataclass(frozen=True)
class Catalog:
    models: list[ModelEntry]
    # True when the endpoint could not be reached and these are OPENROUTER_FALLBACK_MODELS.
    fallback: bool = False
    message: str = ""

    def ids(self) -> set[str]:
        return {m.id for m in self.models}


@dataclass(frozen=True)
class ModelSetting:
    model: str
    is_default: bool
    default_model: str


def _per_million(price: Decimal | None) -> Decimal | None:
    return None if price is None else (price * MILLION).normalize()


def _entry(info: ModelInfo) -> ModelEntry:
    return ModelEntry(
        id=info.id,
        name=info.name,
        context_length=info.context_length,
        prompt_per_million=_per_million(info.prompt_price),
        completion_per_million=_per_million(info.completion_price),
    )


def _cache_key(deps: Dependencies) -> str:
    return f"{deps.settings.queue_prefix}:models:v1"


def _encode(catalog: Catalog) -> str:
    return json.dumps(asdict(catalog), default=str)


def _decode(raw: bytes | str) -> Catalog | None:
    try:
        data = json.loads(raw)
        models = [
            ModelEntry(
                id=m["id"],
                name=m["name"],
                context_length=m.get("context_length"),
                prompt_per_million=_decimal(m.get("prompt_per_million")),
                completion_per_million=_decimal(m.get("completion_per_million")),
            )
            for m in data["models"]
        ]
        return Catalog(models=models, fallback=bool(data["fallback"]), message=str(data["message"]))
    except (ValueError, KeyError, TypeError):
        return None  # a cache entry from another version: fetch again


def _decimal(value: object) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def _fallback(deps: Dependencies) -> Catalog:
    return Catalog(
        models=[ModelEntry(id=m, name=m) for m in deps.settings.fallback_models],
        fallback=True,
        message="OpenRouter's model list could not be loaded, so this is the configured fallback list.",
    )


def load_catalog(deps: Dependencies, *, refresh: bool = False) -> Catalog:
    """Every model, from Redis if fresh (MODELS_CACHE_TTL_SECONDS), else from OpenRouter.

    A failed fetch gives the fallback list, cached for MODELS_FALLBACK_TTL_SECONDS only, so the page
    does not wait on a dead endpoint at every rerun yet recovers soon after it comes back.
    """
    key = _cache_key(deps)
    if not refresh:
        raw = deps.redis.get(key)
        cached = _decode(raw) if raw else None
        if cached is not None:
            return cached
    try:
        models = sorted((_entry(m) for m in deps.llm.list_models()), key=lambda m: m.id)
        catalog = Catalog(models=models) if models else _fallback(deps)
    except ProviderError as exc:
        log.warning("models_list_failed", error=exc.message, status=exc.status)
        catalog = _fallback(deps)
    ttl = (
        deps.settings.models_fallback_ttl_seconds
        if catalog.fallback
        else deps.settings.models_cache_ttl_seconds
    )
    if ttl > 0:
        deps.redis.set(key, _encode(catalog), ex=ttl)
    return catalog


def search(catalog: Catalog, query: str | None) -> list[ModelEntry]:
    """Models whose id or name contains every word of the query (case-insensitive)."""
    words = (query or "").lower().split()
    return [m for m in catalog.models if all(w in f"{m.id} {m.name}".lower() for w in words)]


def current_setting(deps: Dependencies, actor: Actor) -> ModelSetting:
    with deps.sessionmaker() as s:
        user = s.get(User, actor.id)
        default = default_model(s, deps.settings)
        chosen = user.openrouter_model if user is not None else None
        return ModelSetting(model=chosen or default, is_default=not chosen, default_model=default)


def _checked(deps: Dependencies, model_id: str) -> str:
    model = (model_id or "").strip()
    if not model or len(model) > MODEL_ID_MAX:
        raise UserError("Pick a model from the list.")
    if model not in load_catalog(deps).ids():
        raise UserError(f"The model {model!r} is not in OpenRouter's list; pick one from the list.")
    return model


def choose_model(deps: Dependencies, actor: Actor, model_id: str | None) -> ModelSetting:
    """Save this user's model for their new jobs; None goes back to the team default."""
    model = None if model_id is None else _checked(deps, model_id)
    with deps.sessionmaker.begin() as s:
        user = s.get(User, actor.id)
        if user is None:
            raise UserError("Your account no longer exists; sign in again.")
        user.openrouter_model = model
    log.info("model_chosen", user_id=actor.id, model=model)
    return current_setting(deps, actor)


def set_default_model(deps: Dependencies, actor: Actor, model_id: str) -> str:
    """Admins only: the model of every user who has not picked one."""
    if not actor.is_admin:
        raise UserError("Only an admin can change the default model.")
    model = _checked(deps, model_id)
    with deps.sessionmaker.begin() as s:
        row = s.get(AppSetting, DEFAULT_MODEL_KEY)
        if row is None:
            s.add(AppSetting(key=DEFAULT_MODEL_KEY, value=model, updated_at=deps.clock()))
        else:
            row.value, row.updated_at = model, deps.clock()
    log.info("default_model_set", by=actor.username, model=model)
    return model
