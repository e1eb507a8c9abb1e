"""Typed FastAPI dependencies: the settings, the served-model holder and the model a request is answered with.

`ServedModel` is taken once per request, so a reload mid-request cannot mix two models. They are coroutines
because FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request for an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sales_serving.errors import ServiceError
from sales_serving.loading import LoadedModel
from sales_serving.served_model import ModelHolder
from sales_serving.settings import ServingSettings


async def get_settings(request: Request) -> ServingSettings:
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_served_model(request: Request) -> LoadedModel:
    """The model being served; ServiceError 503 (with how to train one) when there is none."""
    holder: ModelHolder = request.app.state.holder
    model = holder.model
    if model is None:
        raise ServiceError(503, "no_model", holder.status().reason or "no model loaded")
    return model


Settings = Annotated[ServingSettings, Depends(get_settings)]
Holder = Annotated[ModelHolder, Depends(get_holder)]
ServedModel = Annotated[LoadedModel, Depends(get_served_model)]
