"""Property-based run of the service against its own OpenAPI schema: no 5xx, no response outside the schema."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sales_serving.app import create_app
from sales_serving.settings import ServingSettings

EXAMPLES_PER_OPERATION = 25
# The protocols' bodies are generic (MLflow's dataframes, OIP's tensors): their JSON Schema cannot say which
# columns a row needs, so a schema-valid body may rightly get a 4xx; everything else is still checked.
GENERIC_BODIES = ("POST /invocations", "POST /v2/models/{model_name}/infer")


def test_api_conforms_to_its_schema(data_dir: Path, bundle_v1: Path) -> None:
    app = create_app(ServingSettings(data_dir=data_dir))
    # The ASGI transport does not run the lifespan, so load the bundle the way startup would.
    app.state.holder.refresh(force=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.label for operation in operations} >= {
        "POST /predict",
        "POST /predict/batch",
        "GET /health",
        "POST /invocations",
        "POST /v2/models/{model_name}/infer",
        "GET /v2/health/ready",
    }
    statuses: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case) -> None:
            excluded = [positive_data_acceptance] if case.operation.label.startswith(GENERIC_BODIES) else []
            statuses.append(case.call_and_validate(excluded_checks=excluded).status_code)

        check()
    assert max(statuses) < 500
    # Positive generation must mostly produce valid rows, so real predictions were exercised.
    assert statuses.count(200) > len(operations)
