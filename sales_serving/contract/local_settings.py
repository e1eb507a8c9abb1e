"""Where every command of the project finds the user's choices: the settings file and the data folder.

Both settings objects (`sales_assets.settings.Settings`, `sales_serving.settings.ServingSettings`) read the
same YAML file: the one `SALES_SETTINGS_FILE` names, else `sales-settings.yaml` at the project root (the
quickstart writes it, git ignores it); `SALES_SETTINGS_FILE=` (empty) reads none. The data folder defaults
to `data/` at the project root, so a command run from another folder finds the same data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

# The source checkout (an editable install); None when installed elsewhere (site-packages).
_CHECKOUT = Path(__file__).resolve().parents[2]
PROJECT_ROOT: Path | None = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else None
LOCAL_SETTINGS_NAME = "sales-settings.yaml"


def local_settings_path() -> Path:
    """The project's settings file (it may not exist yet); in the working directory when not a checkout."""
    return (PROJECT_ROOT or Path.cwd()) / LOCAL_SETTINGS_NAME


def default_data_dir() -> Path:
    """`data/` at the project root, or in the working directory when not a checkout."""
    return (PROJECT_ROOT or Path.cwd()) / "data"


def settings_file() -> Path | None:
    """The YAML settings file in force: `SALES_SETTINGS_FILE`, else the project's when it exists.

    Raises FileNotFoundError when `SALES_SETTINGS_FILE` names a file that does not exist."""
    named = os.environ.get("SALES_SETTINGS_FILE")
    if named is not None:
        if not named:
            return None
        if not Path(named).is_file():
            raise FileNotFoundError(f"SALES_SETTINGS_FILE={named!r} does not exist")
        return Path(named)
    local = local_settings_path()
    return local if local.is_file() else None


def data_dir_hint(data_dir: Path) -> str:
    """The sentence every "not found" message ends with: which data folder was read and how to name
    another, since a command run from elsewhere or with other settings reads another folder."""
    source = settings_file()
    return (
        f"The data folder read is {Path(data_dir).resolve()} (from SALES_DATA_DIR, else "
        f"{source or local_settings_path()}, else the project's data/); if the pipeline wrote elsewhere, "
        "set SALES_DATA_DIR to that folder."
    )


def settings_sources(
    settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource, env: PydanticBaseSettingsSource
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of both settings objects, highest first: init arguments, environment, the settings
    file in force (`settings_file()`), then the class defaults. For `settings_customise_sources`."""
    from pydantic_settings import YamlConfigSettingsSource

    yaml_file = settings_file()
    if yaml_file is None:
        return (init, env)
    return (init, env, YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
