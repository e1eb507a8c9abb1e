"""Reading a JSON report through its pydantic model, with an error a user can act on: the file, the fields
that do not match, and the asset that writes it. Shared by the groups' report models (neutral module).

Pydantic only: importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

Report = TypeVar("Report", bound=BaseModel)


def validation_summary(error: ValidationError, limit: int = 3) -> str:
    """`field.path: message` of the first `limit` errors, and how many more: one readable line."""
    problems = [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in error.errors()]
    more = f" (+{len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def read_report(model: type[Report], path: Path, produced_by: str, kind: str | None = None) -> Report:
    """Validate the JSON file `path` as `model` (`kind` names it in the message, default the model's name).
    Raises `ValueError` naming the file, what does not match (invalid JSON included) and the asset to
    rematerialise; `OSError` when the file cannot be read."""
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as error:
        raise ValueError(
            f"{path}: not a {kind or model.__name__} ({validation_summary(error)}); rematerialise {produced_by}"
        ) from error
