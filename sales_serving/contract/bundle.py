"""The model bundle contract: layout, CURRENT, and the metadata.json model both sides code against.

Layout under `<data_dir>/models/<model_name>/` (see `models_dir`):

    <version>/pipeline.joblib   the fitted scikit-learn Pipeline (request-derived features in, SALES out)
    <version>/model.onnx        the same pipeline as an ONNX graph (optional: absent means joblib only)
    <version>/metadata.json     `BundleMetadata`
    <version>/manifest.json     `Manifest`: the sha256 of every other file, written last
    publication.json            `PublicationRecord`: the last committed publication (bundle, its digest,
                                the MLflow version the alias names); CURRENT and the alias follow it
    CURRENT                     one line: the <version> serving loads; replaced by atomic rename only

A bundle is written aside and renamed whole (`sales_serving.contract.publish`), so a reader sees a complete
bundle or none. Readers check the manifest before they load anything (`verify_bundle`): a file whose bytes
differ from what was published is refused before it is unpickled or parsed. Training writes a bundle for
every candidate and publishes per the serving policy (`ServingPolicy`); serving only reads. Imports pydantic
and the standard library only (joblib inside `write_bundle`).

Adding a field: add it to the model below with a default (`None` or a value that means "unknown"), so
bundles written before it still validate; `schema_version` changes only when a field changes meaning or
becomes required.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sales_serving.contract.derived import DERIVED_OPS, OpName
from sales_serving.contract.publish import publish_text, published_directory, sha256_file

MODEL_NAME = "sales_regressor"
MODELS_FOLDER = "models"
CURRENT_FILE = "CURRENT"
METADATA_FILE = "metadata.json"
PIPELINE_FILE = "pipeline.joblib"
ONNX_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
PUBLICATION_FILE = "publication.json"
BUNDLE_FILES = (PIPELINE_FILE, ONNX_FILE, METADATA_FILE, MANIFEST_FILE)
# The derived-feature ops a bundle may name, with how many inputs each takes (defined in `derived`).
OPERAND_COUNTS = {name: op.operand_count for name, op in DERIVED_OPS.items()}
VERSIONED_LIBRARIES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "onnxmltools",
    "xgboost",
    "lightgbm",
    "catboost",
    "mlflow",
    "mapie",
    "joblib",
)

# champion: CURRENT moves only to a bundle that won its promotion (the MLflow alias `champion` names the
# same model). newest_candidate: CURRENT follows every trained candidate, for experiments only.
ServingPolicy = Literal["champion", "newest_candidate"]


class BundleError(Exception):
    """A bundle (or CURRENT) that breaks the contract; the message names the file and what is wrong."""


def models_dir(data_dir: Path | str, model_name: str = MODEL_NAME) -> Path:
    """`<data_dir>/models/<model_name>`: where bundles and CURRENT live."""
    return Path(data_dir) / MODELS_FOLDER / model_name


def bundle_version(run_id: str, now: datetime | None = None) -> str:
    """Sortable bundle folder name: UTC timestamp plus the first 8 characters of the Dagster run id."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{run_id[:8]}"


def library_versions() -> dict[str, str]:
    """Python and the installed versions of the libraries a bundle depends on (absent ones left out)."""
    versions = {"python": platform.python_version()}
    for library in VERSIONED_LIBRARIES:
        try:
            versions[library] = version(library)
        except PackageNotFoundError:
            continue
    return versions


# ---------------------------------------------------------------------------------------------- metadata


class BundleFeature(BaseModel):
    """One model input column (after derivation), in the pipeline's order."""

    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical"]
    dtype: str
    allowed_categories: list[str] | None = None


class DerivedFeatureSpec(BaseModel):
    """A feature computed from request fields: `op` applied to `inputs` (see OPERAND_COUNTS)."""

    name: str = Field(min_length=1)
    op: OpName
    inputs: list[str]

    @model_validator(mode="after")
    def _operand_count(self) -> DerivedFeatureSpec:
        if len(self.inputs) != OPERAND_COUNTS[self.op]:
            raise ValueError(f"op {self.op!r} takes {OPERAND_COUNTS[self.op]} input(s), got {self.inputs}")
        return self


class OnnxInputSpec(BaseModel):
    name: str
    type: Literal["float32", "float64", "string"]


class OnnxSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    file: str = ONNX_FILE
    # "request_fields": the graph takes the request fields (numbers as float64, text as string) and derives
    # the features itself, so any runtime can call it; "features": inputs are the feature columns (older
    # bundles).
    input_kind: Literal["features", "request_fields"] = "features"
    inputs: list[OnnxInputSpec]
    output: str
    parity_passed: bool
    max_abs_diff: float | None = None
    tolerance: float
    rows_checked: int | None = None


class Lineage(BaseModel):
    model_config = ConfigDict(extra="allow")

    dagster_run_id: str | None
    # The parent MLflow run of the training (all candidates are nested under it).
    mlflow_run_id: str | None
    mlflow_model_version: str | None = None
    # The run the registered model version's source points at (a child run when training nests runs);
    # /health names this one.
    mlflow_model_run_id: str | None = None
    data_sha256: str | None


class Promotion(BaseModel):
    """Whether this bundle won its promotion, and the policy CURRENT was moved under when it was published."""

    model_config = ConfigDict(extra="allow")

    promoted: bool
    policy: ServingPolicy = "champion"
    reason: str | None = None


class IntervalBand(BaseModel):
    """A prediction interval as factors of the prediction: [prediction x (1 + lower), prediction x (1 + upper)].

    On capped rows the prediction is QUANTITYORDERED x predicted unit price, so the band is relative to
    the predicted unit price as well."""

    lower_relative: float = Field(le=0, gt=-1)
    upper_relative: float = Field(ge=0)


class PredictionIntervals(BaseModel):
    """Prediction intervals for the target, calibrated on out-of-fold residuals of the training data.

    Two regimes: rows whose `price_field` is below `price_cap` are exact (zero width: SALES is quantity x
    price there); other rows get `levels[level]`. `price_cap` None means every row gets the band.
    `coverage_holdout[level]` is the share of held-out rows inside the interval (measured, not nominal)."""

    model_config = ConfigDict(extra="allow")

    method: str = Field(min_length=1, description="e.g. 'split-conformal (MAPIE), relative residuals'")
    price_field: str = "PRICEEACH"
    price_cap: float | None = None
    levels: dict[float, IntervalBand] = Field(min_length=1)
    coverage_holdout: dict[float, float] = {}
    calibration_rows: int | None = None

    @model_validator(mode="after")
    def _levels_are_probabilities(self) -> PredictionIntervals:
        outside = [level for level in [*self.levels, *self.coverage_holdout] if not 0 < level < 1]
        if outside:
            raise ValueError(f"interval levels must lie in (0, 1), got {outside}")
        return self


class BundleMetadata(BaseModel):
    """metadata.json, schema_version 1. Unknown extra keys are kept (training may record more)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    schema_version: Literal[1]
    model_name: str
    version: str
    created_at: str
    target: str
    estimator: str
    leaky: bool
    request_fields: list[str] = Field(min_length=1)
    derived_features: list[DerivedFeatureSpec]
    features: list[BundleFeature] = Field(min_length=1)
    onnx: OnnxSpec
    metrics: dict[str, Any]
    lineage: Lineage
    library_versions: dict[str, Any]
    # None in bundles written before promotion was recorded.
    promotion: Promotion | None = None
    # None: the bundle carries no interval calibration, so answers come without intervals.
    intervals: PredictionIntervals | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BundleMetadata:
        known = set(self.request_fields)
        for derived in self.derived_features:
            missing = [name for name in derived.inputs if name not in known]
            if missing:
                raise ValueError(
                    f"derived feature {derived.name!r} needs {missing}, which no request field or earlier derived feature provides"
                )
            known.add(derived.name)
        unknown = [spec.name for spec in self.features if spec.name not in known]
        if unknown:
            raise ValueError(f"features {unknown} are neither request fields nor derived features")
        if self.onnx.input_kind == "request_fields":
            text_fields = {spec.name for spec in self.features if spec.kind == "categorical"}
            expected = [(name, name in text_fields) for name in self.request_fields]
            if [(item.name, item.type == "string") for item in self.onnx.inputs] != expected:
                raise ValueError(
                    f"onnx.inputs must name the request fields in order {self.request_fields}, strings "
                    f"exactly for the categorical ones {sorted(text_fields & set(self.request_fields))}"
                )
            return self._intervals_consistent()
        names = [spec.name for spec in self.features]
        if [spec.name for spec in self.onnx.inputs] != names:
            raise ValueError(f"onnx.inputs must name the features in order {names}")
        for spec, onnx_input in zip(self.features, self.onnx.inputs, strict=True):
            if (spec.kind == "categorical") != (onnx_input.type == "string"):
                raise ValueError(
                    f"feature {spec.name!r} is {spec.kind} but its ONNX input is {onnx_input.type}"
                )
        return self._intervals_consistent()

    def _intervals_consistent(self) -> BundleMetadata:
        intervals = self.intervals
        if intervals and intervals.price_cap is not None and intervals.price_field not in self.request_fields:
            raise ValueError(f"intervals.price_field {intervals.price_field!r} is not a request field")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.features]


def validate_metadata(raw: Mapping[str, Any] | BundleMetadata, source: Path | str) -> BundleMetadata:
    """`raw` as BundleMetadata; BundleError naming `source` and every field that breaks the contract."""
    if isinstance(raw, BundleMetadata):
        return raw
    try:
        return BundleMetadata.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}"
            for item in error.errors()
        )
        raise BundleError(f"{source}: breaks the bundle contract: {problems}") from error


def read_metadata(directory: Path) -> BundleMetadata:
    """`<directory>/metadata.json`, validated; BundleError when missing, not JSON, or off-contract."""
    path = directory / METADATA_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BundleError(f"{path}: missing (is {directory.name} a complete bundle?)") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: not valid JSON: {error}") from error
    metadata = validate_metadata(raw, path)
    if metadata.version != directory.name:
        raise BundleError(f"{path}: says version {metadata.version!r} but lives in {directory.name!r}")
    return metadata


# ------------------------------------------------------------------------------------------------ CURRENT


def read_current(models_dir: Path) -> str | None:
    """The version CURRENT names; None when there is no CURRENT yet (nothing published, a normal state).

    Raises BundleError when CURRENT exists but does not hold one bundle folder name."""
    pointer = Path(models_dir) / CURRENT_FILE
    try:
        version = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise BundleError(f"{pointer}: expected one bundle directory name: {error}") from error
    if not version or "/" in version or "\\" in version or version.startswith(".") or "\n" in version:
        raise BundleError(f"{pointer}: expected one bundle directory name, got {version[:80]!r}")
    return version


def point_current(models_dir: Path, version: str) -> None:
    """Replace CURRENT in one rename, so a reader sees the old or the new name, never a partial file."""
    models_dir = Path(models_dir)
    if not (models_dir / version).is_dir():
        raise BundleError(f"{models_dir / version}: no such bundle, CURRENT left as it was")
    publish_text(models_dir / CURRENT_FILE, version + "\n")


# ----------------------------------------------------------------------------------------------- manifest


class Manifest(BaseModel):
    """manifest.json: the sha256 of each file of the bundle (every file but the manifest itself)."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["sha256"] = "sha256"
    files: dict[str, str] = Field(min_length=1)


def bundle_digest(directory: Path) -> str:
    """sha256 of the bundle's manifest.json: one digest that names every byte of the bundle."""
    return sha256_file(Path(directory) / MANIFEST_FILE)


def verify_bundle(directory: Path) -> Manifest:
    """Check every file of the bundle against its manifest before anything in it is read as a model.

    Raises BundleError naming the file when the manifest is missing or malformed, a listed file is missing
    or its sha256 differs, or the folder holds a file the manifest does not list. Reads every byte of the
    bundle once (a load, not a request, pays for it)."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError as error:
        raise BundleError(
            f"{path}: missing, so the bundle's files cannot be checked against what was published "
            "(bundles written before manifests must be published again by training)"
        ) from error
    except ValidationError as error:
        raise BundleError(f"{path}: not a manifest: {error.errors()[0]['msg']}") from error
    present = {child.name for child in directory.iterdir()} - {MANIFEST_FILE}
    unlisted = sorted(present - set(manifest.files))
    if unlisted:
        raise BundleError(f"{directory}: holds {unlisted}, which its manifest does not list")
    for name, expected in manifest.files.items():
        if name not in present:
            raise BundleError(f"{directory / name}: listed in the manifest but missing")
        actual = sha256_file(directory / name)
        if actual != expected:
            raise BundleError(
                f"{directory / name}: sha256 {actual[:16]}... differs from the published "
                f"{expected[:16]}... (the file was changed after publication)"
            )
    return manifest


def read_verified(directory: Path, name: str, manifest: Manifest) -> bytes:
    """The bytes of one bundle file, checked against `manifest` as read (so the bytes a loader parses are
    the bytes that were checked); BundleError when unlisted or changed."""
    expected = manifest.files.get(name)
    if expected is None:
        raise BundleError(f"{Path(directory) / name}: missing (the bundle's manifest does not list it)")
    data = (Path(directory) / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise BundleError(f"{Path(directory) / name}: changed since the manifest was checked")
    return data


# ------------------------------------------------------------------------------------------- publication


class PublicationRecord(BaseModel):
    """publication.json: the last committed publication. CURRENT names `version` and the registry alias
    names `champion_version`; a reader that finds them elsewhere repairs them to this record."""

    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    sequence: int = Field(ge=1)
    version: str = Field(min_length=1, description="the bundle folder CURRENT names")
    bundle_sha256: str = Field(min_length=64, max_length=64, description="sha256 of its manifest.json")
    mlflow_model_version: str | None = Field(description="registered version of that bundle's model")
    champion_version: str | None = Field(description="registered version the champion alias names")
    published_at: str
    dagster_run_id: str | None = None


def read_publication(models_dir: Path) -> PublicationRecord | None:
    """The committed record; None when nothing was published yet. BundleError when it is not a record."""
    path = Path(models_dir) / PUBLICATION_FILE
    try:
        return PublicationRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as error:
        raise BundleError(f"{path}: not a publication record: {error.errors()[0]['msg']}") from error


def commit_publication(models_dir: Path, record: PublicationRecord) -> Path:
    """Commit `record` in one rename, after checking the bundle it names is whole and has its digest."""
    directory = Path(models_dir) / record.version
    verify_bundle(directory)
    if bundle_digest(directory) != record.bundle_sha256:
        raise BundleError(f"{directory}: its manifest digest is not the record's {record.bundle_sha256[:16]}")
    return publish_text(Path(models_dir) / PUBLICATION_FILE, record.model_dump_json(indent=2) + "\n")


def write_bundle(
    models_dir: Path,
    version: str,
    pipeline: Any,
    onnx_bytes: bytes | None,
    metadata: Mapping[str, Any] | BundleMetadata,
    *,
    make_current: bool = True,
) -> Path:
    """Validate `metadata`, write `<models_dir>/<version>/` whole with its manifest, then (if
    `make_current`) move CURRENT.

    `pipeline` is pickled with joblib; `onnx_bytes` None writes no model.onnx. Raises BundleError when the
    metadata breaks the contract or names another version (nothing is written), FileExistsError when the
    version exists. A failure at any step leaves CURRENT and every existing bundle as they were and
    removes the aside directory (a killed writer's is left for the sweep)."""
    import joblib

    models_dir = Path(models_dir)
    final = models_dir / version
    checked = validate_metadata(metadata, final / METADATA_FILE)
    if checked.version != version:
        raise BundleError(
            f"{final / METADATA_FILE}: says version {checked.version!r}, written as {version!r}"
        )
    with published_directory(final) as aside:
        joblib.dump(pipeline, aside / PIPELINE_FILE)
        if onnx_bytes is not None:
            (aside / checked.onnx.file).write_bytes(onnx_bytes)
        (aside / METADATA_FILE).write_text(
            # default=str: training may record extra values (numpy scalars, paths) beside the contract's fields.
            json.dumps(checked.model_dump(), indent=2, default=str) + "\n",
            encoding="utf-8",
        )
        files = {child.name: sha256_file(child) for child in sorted(aside.iterdir())}
        (aside / MANIFEST_FILE).write_text(Manifest(files=files).model_dump_json(indent=2) + "\n", "utf-8")
    if make_current:
        point_current(models_dir, version)
    return final
