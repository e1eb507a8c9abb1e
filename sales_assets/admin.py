"""`sales-admin`: housekeeping of the data folder and the Dagster instance.

sales-admin prune            keep the newest `keep_bundles` model bundles (plus CURRENT's and the
                             champion's), delete the others and the MLflow runs and artifacts no
                             kept bundle or registered model version needs (then `mlflow gc`
                             removes deleted runs for good); delete the cleaned folders
                             of export keys neither registered nor the current key of a file in
                             SALES_RAW_DIR (superseded exports)
sales-admin recover          mark runs whose process is gone failed, free their pool slots, sweep
                             their temp files (every run and command does this on its own too), and
                             move CURRENT and the champion alias back to the last publication record
sales-admin remember         write the data folder / raw CSV given to the project's settings file
sales-admin cancel-interrupted --pid N
                             mark the runs process N executed, interrupted by Ctrl-C, canceled
sales-admin summary --since EPOCH
                             the checks that failed in runs created since EPOCH (JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from sales_assets.settings import Settings
from sales_serving.contract.bundle import CURRENT_FILE, METADATA_FILE, read_current, read_publication
from sales_serving.contract.local_settings import local_settings_path, settings_file


@dataclass
class Pruned:
    bundles_kept: list[str] = field(default_factory=list)
    bundles_deleted: list[str] = field(default_factory=list)
    mlflow_runs_deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    export_folders_deleted: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"prune: kept {len(self.bundles_kept)} bundle(s), deleted {len(self.bundles_deleted)}; "
            f"deleted {len(self.mlflow_runs_deleted)} old MLflow run(s); freed {self.bytes_freed / 2**20:,.1f} MiB"
            + (
                f"; deleted {len(self.export_folders_deleted)} superseded export folder(s)"
                if self.export_folders_deleted
                else ""
            )
        )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def bundle_versions(models_dir: Path) -> list[str]:
    """Bundle folders under `models_dir` (complete ones: they hold metadata.json), oldest first."""
    if not models_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in models_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()
    )


def _lineage(models_dir: Path, version: str) -> dict:
    raw = json.loads((models_dir / version / METADATA_FILE).read_text(encoding="utf-8"))
    return raw.get("lineage") or {}


def _mlflow_client(settings: Settings):
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from mlflow.tracking import MlflowClient

    # The registry named too: a process that set a global registry URI must not prune against another store.
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion_model_version(settings: Settings, client) -> str | None:
    """The registered model version the champion alias names, None when there is none."""
    if client is None:
        return None
    from mlflow.exceptions import MlflowException

    try:
        return str(
            client.get_model_version_by_alias(
                settings.ml.registered_model_name, settings.ml.champion_alias
            ).version
        )
    except MlflowException:
        return None


def prune_export_folders(
    settings: Settings, registered: Collection[str], pruned: Pruned | None = None
) -> Pruned:
    """Delete the cleaned folder (its symlink and every version folder) of each export key under
    `processed/sales_exports/` that is neither in `registered` (the dynamic partitions of the instance) nor
    the current key of a file in `SALES_RAW_DIR`: a file changed or removed since, whose key the sensor
    unregistered and the warehouse no longer reads. Folders being written (hidden staging names) are not
    touched. Nothing is deleted when `SALES_RAW_DIR` is set but not a folder (a missing mount must not look
    like removed files)."""
    from sales_assets.export_layer import partition_dir, scan_exports
    from sales_assets.io import published_versions

    pruned = Pruned() if pruned is None else pruned
    clean_dir = settings.exports_clean_dir
    if not clean_dir.is_dir():
        return pruned
    raw_dir = settings.raw_dir_path
    if raw_dir is None:
        current: set[str] = set()
    elif raw_dir.is_dir():
        current = {e.key for e in scan_exports(raw_dir, settings.ingest.export_glob)}
    else:
        return pruned
    # Folder names, not unquoted keys: a long key's folder is named by its digest (`partition_dir`).
    keep = {partition_dir(clean_dir, key).name for key in set(registered) | current}
    for entry in sorted(clean_dir.iterdir()):
        if entry.name.startswith(".") or not (entry.is_symlink() or entry.is_dir()):
            continue
        if entry.name in keep:
            continue
        key = _folder_key(entry)
        versions = published_versions(entry)
        if entry.is_symlink():
            entry.unlink()  # readers stop finding the key first, then its data goes
        else:
            versions.append(entry)  # the layout before versions: the folder itself
        for version in versions:
            pruned.bytes_freed += _size(version)
            shutil.rmtree(version, ignore_errors=True)
        pruned.export_folders_deleted.append(key)
    return pruned


def _folder_key(entry: Path) -> str:
    """The export key a clean-layer folder holds: its manifest's, else its unquoted name."""
    from sales_assets.export_layer import MANIFEST_FILE

    try:
        return json.loads((entry / MANIFEST_FILE).read_text(encoding="utf-8"))["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return unquote(entry.name)


def registered_export_keys() -> list[str]:
    """The export partition keys registered in the Dagster instance of DAGSTER_HOME."""
    import dagster as dg

    from sales_assets.ingest.partitions import EXPORTS_PARTITIONS

    with dg.DagsterInstance.get() as instance:
        return list(instance.get_dynamic_partitions(EXPORTS_PARTITIONS.name))


def prune(
    settings: Settings, keep: int | None = None, registered_exports: Collection[str] | None = None
) -> Pruned:
    """Delete model bundles beyond the newest `keep` (default `settings.keep_bundles`), never the one CURRENT
    names, the last publication record's nor the champion's; then delete MLflow runs (and their artifacts and logged models) that are
    finished, not a registered model version's source, and not the training run of a kept bundle or a
    child of one. With `registered_exports` (the instance's export partition keys), also the folders of
    superseded exports (`prune_export_folders`). Raises nothing when there is no MLflow store or no bundle."""
    keep = settings.keep_bundles if keep is None else keep
    models_dir = settings.models_dir
    pruned = Pruned()
    if registered_exports is not None:
        prune_export_folders(settings, registered_exports, pruned)
    from sales_assets.ingest.source import prune_landed

    # Landed copies of the raw CSV other than the one clean_parquet reads.
    pruned.bytes_freed += sum(size for _, size in prune_landed(settings.landed_dir))
    client = _mlflow_client(settings)
    versions = bundle_versions(models_dir)
    champion = champion_model_version(settings, client)
    kept = set(versions[-keep:]) if keep else set()
    current = read_current(models_dir) if (models_dir / CURRENT_FILE).is_file() else None
    if current:
        kept.add(current)
    # The last committed publication's bundle: what CURRENT is repaired to if it ever drifts.
    record = read_publication(models_dir)
    if record is not None:
        kept.add(record.version)
    if champion is not None:
        kept |= {v for v in versions if str(_lineage(models_dir, v).get("mlflow_model_version")) == champion}
    for version in versions:
        if version in kept:
            pruned.bundles_kept.append(version)
        else:
            pruned.bytes_freed += _size(models_dir / version)
            shutil.rmtree(models_dir / version)
            pruned.bundles_deleted.append(version)
    if client is not None:
        needed = set()
        for version in pruned.bundles_kept:
            lineage = _lineage(models_dir, version)
            needed |= {lineage.get("mlflow_run_id"), lineage.get("mlflow_model_run_id")}
        _prune_mlflow(settings, client, needed - {None}, pruned)
        collect_deleted(settings)
    return pruned


def collect_deleted(settings: Settings) -> None:
    """`mlflow gc` on the settings' store: rows (runs with their params, metrics and tags; logged models)
    in the `deleted` lifecycle stage, ours or deleted in the UI, are removed for good, with their
    artifacts; without it a deleted run keeps its rows and the database grows with every refresh.

    Raises:
        subprocess.CalledProcessError: `mlflow gc` failed (its output is in the exception).
    """
    import subprocess

    subprocess.run(
        # gc resolves artifact locations through a tracking URI even when it is the backend store itself.
        [sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", settings.mlflow_tracking_uri]
        + ["--tracking-uri", settings.mlflow_tracking_uri],
        check=True,
        capture_output=True,
        text=True,
    )


def _prune_mlflow(settings: Settings, client, needed: set[str], pruned: Pruned) -> None:
    from mlflow.entities import ViewType

    registered = {
        mv.run_id for mv in client.search_model_versions(f"name='{settings.ml.registered_model_name}'")
    }
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return
    runs = client.search_runs(experiment_ids, run_view_type=ViewType.ACTIVE_ONLY, max_results=50_000)
    from sales_assets.ml.tracking import TRAINING_RUN_TAG

    # A model's run belongs to its training run: nested (mlflow.parentRunId) in older stores, a top-level
    # run tagged with the training run's id since each model shows as its own row in the MLflow UI.
    parent_of = {
        r.info.run_id: r.data.tags.get("mlflow.parentRunId") or r.data.tags.get(TRAINING_RUN_TAG)
        for r in runs
    }
    keep = needed | registered
    keep |= {parent_of[r] for r in keep if parent_of.get(r)}
    keep |= {r for r, parent in parent_of.items() if parent in keep}
    artifacts_root = settings.mlflow_dir.resolve()
    for run in runs:
        run_id = run.info.run_id
        if run_id in keep or run.info.status == "RUNNING":
            continue
        for model in client.search_logged_models(experiment_ids, filter_string=f"source_run_id = '{run_id}'"):
            pruned.bytes_freed += _remove_local_artifacts(model.artifact_location, artifacts_root)
            client.delete_logged_model(model.model_id)
        pruned.bytes_freed += _remove_local_artifacts(run.info.artifact_uri, artifacts_root)
        client.delete_run(run_id)
        pruned.mlflow_runs_deleted.append(run_id)


def _remove_local_artifacts(uri: str | None, inside: Path) -> int:
    """Remove the artifact folder `uri` when it is a local path under `inside`; returns the bytes freed."""
    if not uri:
        return 0
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return 0
    path = Path(url2pathname(parsed.path)).resolve()
    if not path.is_relative_to(inside) or not path.exists():
        return 0
    size = _size(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


def remember(data_dir: Path | None, raw_csv: Path | None) -> Path | None:
    """Write the data folder and raw CSV given (absolute) into the settings file in force (the one
    `SALES_SETTINGS_FILE` names, else the project's `sales-settings.yaml`), keeping its other keys.
    Returns the file, None when nothing was given."""
    import yaml

    if data_dir is None and raw_csv is None:
        return None
    if raw_csv is not None:
        from sales_assets.ingest.source import check_input_file

        # A mistyped path must not be remembered (and later generated into): raises InputPathError.
        check_input_file(Path(os.path.abspath(Path(raw_csv).expanduser())), "SALES_RAW_CSV")
    target = settings_file() or local_settings_path()
    current = yaml.safe_load(target.read_text(encoding="utf-8")) if target.is_file() else None
    values = dict(current or {})
    if data_dir is not None:
        values["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if raw_csv is not None:
        values["raw_csv"] = str(Path(raw_csv).expanduser().resolve())
    from sales_assets.io import write_text_atomic

    header = (
        "# Written by scripts/quickstart.py: the choices every command reads (environment variables win).\n"
    )
    write_text_atomic(target, header + yaml.safe_dump(values, sort_keys=True))
    return target


def failed_checks(since: float) -> list[dict]:
    """Asset checks whose last evaluation in runs created since `since` (epoch seconds) did not pass."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    latest: dict[str, dict] = {}
    with dg.DagsterInstance.get() as instance:
        for record in instance.get_run_records(dg.RunsFilter(created_after=_utc(since)), ascending=True):
            for entry in instance.all_logs(
                record.dagster_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            ):
                evaluation = entry.dagster_event.event_specific_data
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                description = evaluation.description or metadata_summary(evaluation.metadata)
                latest[name] = {
                    "check": name,
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value,
                    "description": description[:200],
                }
    return [c for c in latest.values() if not c["passed"]]


def mlflow_leaderboard() -> str | None:
    """The MLflow UI address of the leaderboard (`trained_models`' `mlflow_leaderboard` metadata, see
    `sales_assets.ml.tracking.leaderboard_url`) of its latest materialisation; None before a training."""
    import dagster as dg

    from sales_assets.metadata import leaderboard_address

    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("trained_models"))
    materialization = event.asset_materialization if event is not None else None
    entry = materialization.metadata.get("mlflow_leaderboard") if materialization is not None else None
    return leaderboard_address(getattr(entry, "value", entry))


def metadata_summary(metadata: dict, limit: int = 200) -> str:
    """`name=value` for a check result's short metadata entries (numbers, short texts, lists cut to three
    items), for a check that set no description: what the quickstart prints beside its name."""
    parts = []
    for name, entry in metadata.items():
        value = getattr(entry, "value", entry)
        if isinstance(value, float):
            value = round(value, 4)
        if isinstance(value, list) and len(value) > 3:
            value = f"{value[:3]} and {len(value) - 3} more"
        if isinstance(value, bool | int | float) or (isinstance(value, str | list) and len(str(value)) <= 80):
            parts.append(f"{name}={value}")
    return ", ".join(parts)[:limit]


def _utc(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC)


def repair_publication(settings: Settings) -> list[str]:
    """`sales-admin recover`'s second half: CURRENT and the champion alias moved back to the last committed
    publication record where a killed training left them apart (`sales_assets.ml.publication.repair`).
    What cannot be checked (an unreachable MLflow store, a read-only models folder) is one line, not a
    traceback, and does not fail the command."""
    from sales_assets.ml.publication import repair

    try:
        return repair(settings)
    except Exception as error:  # noqa: BLE001 - recovery reports what it could not do and goes on
        return [f"publication: not checked ({type(error).__name__}: {str(error).splitlines()[0][:200]})"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sales-admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prune_cmd = commands.add_parser("prune", help="delete old model bundles and MLflow artifacts")
    prune_cmd.add_argument("--keep", type=int, help="newest bundles kept (default: setting keep_bundles)")
    commands.add_parser("recover", help="recover runs whose process is gone")
    remember_cmd = commands.add_parser("remember", help="write choices to the settings file")
    remember_cmd.add_argument("--data-dir", type=Path)
    remember_cmd.add_argument("--raw-csv", type=Path)
    cancel_cmd = commands.add_parser(
        "cancel-interrupted", help="mark runs of an interrupted process canceled"
    )
    cancel_cmd.add_argument("--pid", type=int, required=True)
    cancel_cmd.add_argument("--since", type=float, help="epoch seconds the process started")
    summary_cmd = commands.add_parser("summary", help="failed checks of runs since a moment (JSON)")
    summary_cmd.add_argument("--since", type=float, required=True)
    args = parser.parse_args(argv)

    settings = Settings()
    # prune reads the registered export keys only when there are cleaned exports to judge.
    exports_to_judge = args.command == "prune" and settings.exports_clean_dir.is_dir()
    if args.command in ("recover", "cancel-interrupted", "summary") or exports_to_judge:
        from sales_assets.cli import default_dagster_home

        os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home()))
    if args.command == "prune":
        print(prune(settings, args.keep, registered_export_keys() if exports_to_judge else None).line())
    elif args.command == "recover":
        from sales_assets.recovery import recover_on_start

        recover_on_start(settings)
        for line in repair_publication(settings):
            print(line)
    elif args.command == "remember":
        from sales_assets.ingest.source import InputPathError

        try:
            target = remember(args.data_dir, args.raw_csv)
        except InputPathError as error:
            sys.exit(f"sales-admin remember: {error}")
        if target is not None:
            print(f"settings: saved to {target} (every command reads it; environment variables win)")
    elif args.command == "cancel-interrupted":
        import dagster as dg

        from sales_assets.recovery import cancel_interrupted_runs

        with dg.DagsterInstance.get() as instance:
            canceled = cancel_interrupted_runs(instance, args.pid, settings, since=args.since)
        print(f"run(s) marked canceled: {', '.join(r[:8] for r in canceled) or 'none'}")
    elif args.command == "summary":
        summary = {
            "data_dir": str(settings.root),
            "failed_checks": failed_checks(args.since),
            "mlflow_leaderboard": mlflow_leaderboard(),
        }
        json.dump(summary, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
