"""Routers by profile ``router.kind``: the built-in ones register here the same way a plugin would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import RouteshellError
from engine.router.decision import Router
from engine.router.heuristic import HeuristicRouter

RouterFactory = Callable[[dict[str, Any]], Router]


#: The router routeshell ships (``make router`` builds it), used by kind ``model`` without a ``model_dir``.
SHIPPED_ROUTER = Path(__file__).resolve().parent / "default"


def model_router(table: dict[str, Any]) -> Router:
    """The learned router saved in ``table["model_dir"]`` (a directory from ``routeshell train router``),
    or the shipped one (:data:`SHIPPED_ROUTER`) when the table names none.

    Raise :class:`~engine.router.router_dir.RouterDirError` when it is missing or damaged. The
    kind's own module (torch for the embedding routers) is imported only here, by name.
    """
    from engine.router.router_dir import load_model
    from engine.router.scored import ScoredRouter

    model, meta = load_model(_model_dir(table))
    return ScoredRouter(model, name=f"model:{meta['kind']}")


def _model_dir(table: dict[str, Any]) -> Path:
    return Path(str(table["model_dir"])).expanduser() if table.get("model_dir") else SHIPPED_ROUTER


def heuristic_router(table: dict[str, Any]) -> Router:
    """The heuristic router (its table has nothing for it)."""
    return HeuristicRouter()


#: Routers by profile ``router.kind``. A factory takes the profile's ``router`` table.
ROUTERS: dict[str, RouterFactory] = {"heuristic": heuristic_router, "model": model_router}


def register_router(kind: str, factory: RouterFactory) -> None:
    """Register a router factory for profile ``router.kind`` = ``kind`` (replacing any earlier one)."""
    ROUTERS[kind] = factory


def load_router(table: dict[str, Any]) -> tuple[Router, str | None]:
    """Return the router a profile's ``router`` table asks for, and a note when it fell back.

    A kind with no registered router falls back to the heuristic router; the note says so, so
    that the fallback is shown to the user rather than hidden.
    """
    kind = table.get("kind", "heuristic")
    factory = ROUTERS.get(kind)
    if factory is None:
        note = f"no {kind!r} router is available in this installation; using the heuristic router"
        return HeuristicRouter(), note
    try:
        return factory(table), None
    except RouteshellError as err:
        return HeuristicRouter(), f"{err}; using the heuristic router"


def needs_bitsandbytes(table: dict[str, Any]) -> bool:
    """Whether :func:`load_router` of a profile's ``router`` table needs bitsandbytes (see
    :mod:`engine.bitsandbytes_gate`): a learned router in 4-bit, or a router a plugin registered,
    which may load anything."""
    factory = ROUTERS.get(table.get("kind", "heuristic"))
    if factory is model_router:
        from engine.router.router_dir import needs_bitsandbytes as router_dir_needs

        return router_dir_needs(_model_dir(table))
    return factory is not None and factory is not heuristic_router
