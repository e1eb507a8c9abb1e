"""Publication of a trained model, whole or not at all: the bundle is written and verified first, then one
publication record (bundle version, its digest, the registered MLflow version the alias names) is committed,
then the registry alias and CURRENT follow the record. Whoever finds them apart repairs them to the last
committed record (`repair`; every training and export step calls it first, and it is the function for
`sales-admin recover`), and says so. Publications are serialised: the Dagster pool `model_publication`
between runs of one instance, and a lock on the models folder for anything else that publishes into it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sales_assets.settings import Settings
from sales_serving.contract.bundle import (
    METADATA_FILE,
    BundleError,
    PublicationRecord,
    bundle_digest,
    commit_publication,
    point_current,
    read_current,
    read_publication,
    verify_bundle,
)

# Training and export run in this pool (limit 1 in dagster.yaml): two trainings never run or publish at
# once. (Between one run's training and its export another may train; that export then refuses the
# replaced candidate, see `assets.candidate_of_this_run`.)
PUBLICATION_POOL = "model_publication"


@contextlib.contextmanager
def publication_lock(models_dir: Path) -> Iterator[None]:
    """Hold the models folder's publication lock, `.<model>.publication.lock` beside it (flock; released
    by the kernel if the holder dies)."""
    models_dir = Path(models_dir)
    models_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(models_dir.parent / f".{models_dir.name}.publication.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reconcile(settings: Settings) -> list[str]:
    """Move CURRENT and the champion alias back to the last committed record where they differ from it;
    one line per repair (empty when they agree or nothing was published yet). Call under the lock."""
    from sales_assets.ml.tracking import alias_version, point_alias

    models_dir = settings.models_dir
    record = read_publication(models_dir)
    if record is None:
        return []
    repairs = []
    current = read_current(models_dir)
    if current != record.version:
        point_current(models_dir, record.version)
        repairs.append(
            f"CURRENT named {current or 'nothing'}, not the last publication's bundle {record.version} "
            f"(record {record.sequence}): moved back to it"
        )
    if record.champion_version is not None:
        alias = alias_version(settings)
        if alias != record.champion_version:
            point_alias(settings, record.champion_version)
            repairs.append(
                f"the alias {settings.ml.champion_alias!r} named {f'v{alias}' if alias else 'no version'}, "
                f"not the last publication's v{record.champion_version} (record {record.sequence}): moved "
                "back to it"
            )
    return repairs


def repair(settings: Settings) -> list[str]:
    """`reconcile` under the publication lock: what a command (`sales-admin recover`) or a step calls
    before it relies on CURRENT or the alias. One line per repair, each saying what moved."""
    with publication_lock(settings.models_dir):
        return [f"publication repaired: {line}" for line in reconcile(settings)]


def bundle_of(models_dir: Path, lineage: dict) -> str | None:
    """The bundle already written for the candidate with this lineage (same training run and registered
    version), if one is there and whole; None otherwise."""
    if not Path(models_dir).is_dir():
        return None
    for directory in sorted(Path(models_dir).iterdir(), reverse=True):
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        try:
            written = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))["lineage"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        same = all(written.get(key) == lineage.get(key) for key in ("dagster_run_id", "mlflow_model_version"))
        if same:
            try:
                verify_bundle(directory)
            except BundleError:
                continue
            return directory.name
    return None


@dataclass(frozen=True)
class Verdict:
    """What publication does with a bundle: serve it (CURRENT), make it the champion (alias), and why."""

    serve: bool
    champion: bool
    reason: str


def current_champion(settings: Settings) -> str | None:
    """The registered version the last publication made champion (the alias where no record exists yet)."""
    from sales_assets.ml.tracking import alias_version

    record = read_publication(settings.models_dir)
    return record.champion_version if record is not None else alias_version(settings)


def still_valid(promotion: dict, champion: str | None) -> tuple[bool, str]:
    """Whether a promotion decided at training still holds now: it compared the candidate with the
    champion of that moment, and holds only if that is still the champion (another training may have
    published since). Returns (promote, reason)."""
    reason = promotion["reason"]
    if promotion["promote"] and promotion.get("incumbent_version") != champion:
        was = promotion.get("incumbent_version")
        return False, (
            f"not promoted: it was compared with {f'v{was}' if was else 'no champion'}, but v{champion} was "
            f"published as champion since; train again to compare with it ({reason})"
        )
    return bool(promotion["promote"]), reason


def publish(
    settings: Settings, version: str, verdict: Verdict, mlflow_model_version: str, dagster_run_id: str
) -> tuple[PublicationRecord | None, list[str]]:
    """Commit the bundle `version` (written and whole) per `verdict`, then move the alias and CURRENT to
    the record. Returns the committed record (None when the verdict publishes nothing) and the lines that
    say what moved. Call under `publication_lock`."""
    from sales_assets.ml.tracking import point_alias

    models_dir = settings.models_dir
    previous = read_publication(models_dir)
    if not verdict.serve:
        return None, [
            f"bundle {version} written for inspection; CURRENT and the alias stay: {verdict.reason}"
        ]
    champion = mlflow_model_version if verdict.champion else current_champion(settings)
    record = PublicationRecord(
        sequence=(previous.sequence + 1) if previous else 1,
        version=version,
        bundle_sha256=bundle_digest(models_dir / version),
        mlflow_model_version=mlflow_model_version,
        champion_version=champion,
        published_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dagster_run_id=dagster_run_id,
    )
    commit_publication(models_dir, record)
    lines = [f"publication {record.sequence} committed: bundle {version}, v{mlflow_model_version}"]
    if verdict.champion:
        point_alias(settings, mlflow_model_version)
        lines.append(f"the alias {settings.ml.champion_alias!r} moved to v{mlflow_model_version}")
    point_current(models_dir, version)
    lines.append(f"bundle {version} served (CURRENT moved): {verdict.reason}")
    return record, lines
