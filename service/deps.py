"""Annotated dependency aliases: handlers say what they need, the app state provides it.

All async: they do no I/O, and FastAPI would run a plain `def` dependency in its thread pool
(measured: 5.6 % of the API process's samples under streaming load).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.engine.base import Engine
from service.state import EngineState


async def get_state(request: Request) -> EngineState:
    state: EngineState = request.app.state.engine_state
    return state


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(state: Annotated[EngineState, Depends(get_state)]) -> Engine:
    """The engine, once it is ready; 503 with Retry-After before that."""
    if state.engine is None or not state.ready:
        raise state.unavailable_error()
    return state.engine


StateDep = Annotated[EngineState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
