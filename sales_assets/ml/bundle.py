"""The bundle metadata training publishes (validated against `sales_serving.contract.bundle.BundleMetadata`
by `write_bundle`), and the serving gate: which bundle CURRENT names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sales_assets.ml.features import FeatureSpec
from sales_assets.ml.onnx_export import ParityResult, onnx_input_types, onnx_output_name
from sales_serving.contract.bundle import ServingPolicy, library_versions


@dataclass(frozen=True)
class Gate:
    """Whether CURRENT moves to a new bundle, and why."""

    make_current: bool
    promoted: bool
    policy: ServingPolicy
    reason: str

    def as_dict(self) -> dict:
        return {"promoted": self.promoted, "policy": self.policy, "reason": self.reason}


def serving_gate(promotion: dict, policy: ServingPolicy, parity_passed: bool) -> Gate:
    """The one gate of publication. Under policy "champion" CURRENT moves only to a candidate that won its
    promotion (so CURRENT and the MLflow alias name the same model); under "newest_candidate" it follows
    every candidate. A candidate whose ONNX parity fails is never served."""
    promoted = bool(promotion["promote"])
    reason = promotion["reason"]
    if not parity_passed:
        return Gate(False, promoted, policy, f"ONNX parity failed; {reason}")
    if policy == "newest_candidate":
        return Gate(True, promoted, policy, f"policy newest_candidate serves every candidate; {reason}")
    return Gate(promoted, promoted, policy, reason)


def bundle_metadata(
    model_name: str,
    version: str,
    candidate: dict,
    spec: FeatureSpec,
    onnx_bytes: bytes,
    parity: ParityResult,
    gate: Gate,
) -> dict:
    """metadata.json of a bundle: the candidate's model card plus the ONNX export, the gate's verdict and
    library versions."""
    return {
        "schema_version": 1,
        "model_name": model_name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": candidate["target"],
        "estimator": candidate["estimator"],
        "model": candidate["model"],
        "leaky": candidate["leaky"],
        "leaky_features": candidate["leaky_features"],
        "request_fields": candidate["request_fields"],
        "derived_features": candidate["derived_features"],
        "features": candidate["features"],
        "onnx": {
            "file": "model.onnx",
            # The graph takes the request fields and derives the features itself.
            "input_kind": "request_fields",
            "inputs": onnx_input_types(spec),
            "output": onnx_output_name(onnx_bytes),
            "parity_passed": parity.passed,
            "max_abs_diff": parity.max_abs_diff,
            "tolerance": parity.tolerance,
            "rows_checked": parity.rows_checked,
        },
        "metrics": candidate["metrics"],
        "lineage": candidate["lineage"],
        "promotion": gate.as_dict(),
        "intervals": candidate.get("intervals"),
        "library_versions": library_versions(),
    }
