"""Every endpoint and error path of the service through TestClient, with the lifespan (and its watcher) running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sales_serving.app import create_app
from sales_serving.contract.bundle import point_current
from sales_serving.schema import EXAMPLE_ROW
from sales_serving.settings import ServingSettings
from sales_tests.serving.conftest import VERSION_1, VERSION_2, scrape


def wait_for_version(client: TestClient, status: str, version: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = client.get("/health").json()
        if (health["status"], health["model_version"]) == (status, version) or time.monotonic() > deadline:
            return health
        time.sleep(0.02)


def test_health_reports_the_served_bundle(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["reason"] is None
    assert (health["model_name"], health["model_version"], health["backend"]) == (
        "sales_regressor",
        VERSION_1,
        "onnx",
    )
    # The registered version points at the child run; the parent (training) run is named beside it.
    assert health["mlflow_run_id"] == f"mlflow-child-{VERSION_1}"
    assert health["mlflow_training_run_id"] == f"mlflow-{VERSION_1}"
    assert (health["serving_policy"], health["promoted"]) == ("champion", True)
    assert health["intervals"] == [0.8, 0.95]
    assert health["dagster_run_id"] == f"dagster-{VERSION_1}"
    assert health["features"][:2] == ["QUANTITYORDERED", "PRICEEACH"] and "SEASON" in health["features"]
    assert health["loaded_at"].startswith("20")
    assert health["leaky"] is False


def test_model_card_is_the_bundle_metadata(client: TestClient) -> None:
    card = client.get("/model").json()
    assert card["version"] == VERSION_1
    assert card["metrics"]["holdout"]["r2"] == pytest.approx(0.89)
    assert card["lineage"]["data_sha256"] == "0" * 64
    assert card["backend"] == "onnx"
    assert card["onnx"]["parity_passed"] is True


def test_seed_example_payload_predicts_and_lists_dealsize_as_ignored(
    client: TestClient, example_row: dict
) -> None:
    response = client.post("/predict", json=example_row)
    assert response.status_code == 200
    body = response.json()
    assert body["currency"] == "USD" and body["target"] == "SALES"
    assert (body["model_name"], body["model_version"], body["mlflow_run_id"]) == (
        "sales_regressor",
        VERSION_1,
        f"mlflow-child-{VERSION_1}",
    )
    # Synthetic SALES is about QUANTITYORDERED x unit price (30 x ~96).
    assert 1_500 < body["prediction"] < 4_500
    assert body["ignored_features"] == ["DEALSIZE"]
    # The echo of every model input comes only on request.
    assert body["features_used"] is None
    echoed = client.post("/predict?echo_features=true", json=example_row).json()
    assert echoed["prediction"] == body["prediction"]
    assert echoed["features_used"]["SEASON"] == "Winter"
    assert echoed["features_used"]["LINE_TOTAL_APPROX"] == pytest.approx(2871.0)
    assert body["warnings"] == []


def test_extra_fields_are_accepted_and_ignored(client: TestClient, example_row: dict) -> None:
    body = client.post("/predict", json=example_row | {"ORDERNUMBER": 10107, "STATUS": "Shipped"}).json()
    assert body["ignored_features"] == ["DEALSIZE", "ORDERNUMBER", "STATUS"]


def test_unseen_country_warns_but_answers(client: TestClient, example_row: dict) -> None:
    body = client.post("/predict", json=example_row | {"COUNTRY": "Atlantis"}).json()
    assert body["prediction"] > 0
    assert body["warnings"] == ["COUNTRY 'Atlantis' was not seen in training; the model treats it as unknown"]


def test_batch_predicts_each_row_in_order_matching_single_predictions(
    client: TestClient, example_row: dict
) -> None:
    rows = [example_row, example_row | {"QUANTITYORDERED": 60}, example_row | {"COUNTRY": "Atlantis"}]
    response = client.post("/predict/batch", json={"rows": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    singles = [client.post("/predict", json=row).json()["prediction"] for row in rows]
    assert body["predictions"] == pytest.approx(singles, abs=1e-6)
    assert body["predictions"][1] > body["predictions"][0]
    assert body["warnings"] == [
        {"row": 2, "message": "COUNTRY 'Atlantis' was not seen in training; the model treats it as unknown"}
    ]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"QUANTITYORDERED": 0}, "QUANTITYORDERED", "greater than 0"),
        ({"PRICEEACH": -3.5}, "PRICEEACH", "greater than or equal to 0.01"),
        ({"MONTH_ID": 13}, "MONTH_ID", "less than or equal to 12"),
        ({"QTR_ID": 5}, "QTR_ID", "less than or equal to 4"),
        ({"QTR_ID": 3}, "QTR_ID", "QTR_ID 3 does not match MONTH_ID 2: expected QTR_ID 1"),
        ({"QUANTITYORDERED": "thirty"}, "QUANTITYORDERED", 'expected a JSON number, got "thirty" (a string)'),
        ({"PRODUCTLINE": ""}, "PRODUCTLINE", "at least 1 character"),
        ({"COUNTRY": None}, "COUNTRY", "valid string"),
        ({"MSRP": None}, "MSRP", "valid number"),
    ],
)
def test_bad_fields_get_422_naming_the_field(
    client: TestClient, example_row: dict, change: dict, field: str, expected: str
) -> None:
    response = client.post("/predict", json=example_row | change)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == [field]
    assert expected in body["errors"][0]["message"]
    assert field in body["message"]


def test_missing_field_is_named(client: TestClient, example_row: dict) -> None:
    del example_row["YEAR_ID"]
    body = client.post("/predict", json=example_row).json()
    assert body["errors"] == [
        {
            "field": "YEAR_ID",
            "location": ["YEAR_ID"],
            "message": "required field is missing",
            "type": "missing",
        }
    ]


def test_batch_errors_name_row_and_field(client: TestClient, example_row: dict) -> None:
    response = client.post("/predict/batch", json={"rows": [example_row, example_row | {"MONTH_ID": 5}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rows.1.QTR_ID"


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"QUANTITYORDERED": 30,', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert "not valid JSON" in response.json()["message"]


def test_non_json_body_is_422_saying_what_to_send(client: TestClient) -> None:
    response = client.post("/predict", content=b"QUANTITYORDERED=30", headers={"content-type": "text/plain"})
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["message"]


def test_batch_over_the_limit_is_413_naming_rows(client: TestClient, example_row: dict) -> None:
    response = client.post("/predict/batch", json={"rows": [example_row] * 51})
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "rows"
    assert "at most 50 rows per call" in response.json()["message"]


def test_empty_batch_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", json={"rows": []})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rows"


def test_oversized_body_is_413_declared_or_streamed(data_dir: Path, bundle_v1: Path) -> None:
    settings = ServingSettings(data_dir=data_dir, serving_max_body_bytes=2048)
    with TestClient(create_app(settings)) as small:
        declared = small.post(
            "/predict/batch", content=b" " * 4096, headers={"content-type": "application/json"}
        )
        streamed = small.post(
            "/predict/batch",
            content=iter([b" " * 1500, b" " * 1500]),
            headers={"content-type": "application/json"},
        )
        # /predict is answered by the fast path, which must keep the same limit.
        declared_single = small.post(
            "/predict", content=b" " * 4096, headers={"content-type": "application/json"}
        )
        streamed_single = small.post(
            "/predict", content=iter([b" " * 1500, b" " * 1500]), headers={"content-type": "application/json"}
        )
        assert small.get("/health").status_code == 200
    for response in (declared, streamed, declared_single, streamed_single):
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "SALES_SERVING_MAX_BODY_BYTES" in response.json()["message"]


def test_unknown_path_and_method_are_json_4xx(client: TestClient) -> None:
    assert client.get("/nope").json()["error"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_no_model_start_reports_no_model_and_503_with_how_to(settings: ServingSettings) -> None:
    with TestClient(create_app(settings)) as empty:
        health = empty.get("/health").json()
        assert health["status"] == "no_model"
        assert health["model_version"] is None and health["features"] == []
        predict = empty.post(
            "/predict",
            json=EXAMPLE_ROW,
        )
        assert predict.status_code == 503
        assert predict.json()["error"] == "no_model"
        assert "materialis" in predict.json()["message"] and "onnx_model" in predict.json()["message"]
        assert empty.get("/model").status_code == 503


def test_first_bundle_appearing_after_start_is_picked_up(
    settings: ServingSettings, models_dir: Path, trained: dict, example_row: dict
) -> None:
    from sales_tests.serving.bundle_factory import write_bundle

    with TestClient(create_app(settings)) as late:
        assert late.get("/health").json()["status"] == "no_model"
        write_bundle(models_dir, VERSION_1, *trained[VERSION_1])
        assert wait_for_version(late, "ok", VERSION_1)["model_version"] == VERSION_1
        assert late.post("/predict", json=example_row).status_code == 200


def test_hot_reload_when_current_moves(
    client: TestClient, models_dir: Path, bundle_v2: Path, example_row: dict
) -> None:
    before = client.post("/predict", json=example_row).json()
    reloads = scrape(client)[("sales_model_reloads_total", ())]
    point_current(models_dir, VERSION_2)
    health = wait_for_version(client, "ok", VERSION_2)
    assert health["model_version"] == VERSION_2
    after = client.post("/predict", json=example_row).json()
    assert (before["model_version"], after["model_version"]) == (VERSION_1, VERSION_2)
    assert after["prediction"] != before["prediction"]
    assert scrape(client)[("sales_model_reloads_total", ())] == reloads + 1


def test_refused_bundle_keeps_old_model_and_health_says_degraded(
    client: TestClient, models_dir: Path, bundle_v2: Path, example_row: dict
) -> None:
    refusals = scrape(client).get(("sales_model_refusals_total", ()), 0.0)
    from sales_tests.serving.bundle_factory import reseal

    # Published broken (its manifest matches), so the contract check is what refuses it.
    (bundle_v2 / "metadata.json").write_text("{}")
    reseal(bundle_v2)
    point_current(models_dir, VERSION_2)
    health = wait_for_version(client, "degraded", VERSION_1)
    assert health["status"] == "degraded"
    assert health["model_version"] == VERSION_1
    assert "metadata.json: breaks the bundle contract" in health["reason"]
    assert client.post("/predict", json=example_row).json()["model_version"] == VERSION_1
    assert scrape(client)[("sales_model_refusals_total", ())] == refusals + 1


def test_metrics_count_requests_latency_predictions_and_version(
    client: TestClient, example_row: dict
) -> None:
    before = scrape(client)
    client.post("/predict", json=example_row)
    client.post("/predict", json=example_row | {"MONTH_ID": 0})
    client.post("/predict/batch", json={"rows": [example_row] * 4})
    client.get("/nope")
    after = scrape(client)

    def added(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert added("sales_http_requests_total", endpoint="/predict", method="POST", status="200") == 1
    assert added("sales_http_requests_total", endpoint="/predict", method="POST", status="422") == 1
    assert added("sales_http_requests_total", endpoint="/predict/batch", method="POST", status="200") == 1
    assert added("sales_http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert added("sales_http_request_duration_seconds_count", endpoint="/predict") == 2
    assert added("sales_http_request_duration_seconds_bucket", endpoint="/predict", le="+Inf") == 2
    assert added("sales_predictions_total", backend="onnx") == 5
    info = (
        "sales_model_info",
        (("backend", "onnx"), ("model_name", "sales_regressor"), ("version", VERSION_1)),
    )
    assert after[info] == 1
    # Process metrics from prometheus_client's own collector.
    assert after[("process_resident_memory_bytes", ())] > 0


def test_docs_examples_work_as_given(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    single = schemas["SalesFeatures"]["examples"][0]
    assert single["DEALSIZE"] == "Small"
    assert client.post("/predict", json=single).status_code == 200
    batch = schemas["BatchRequest"]["examples"][0]
    assert client.post("/predict/batch", json=batch).json()["count"] == 2


def test_joblib_backend_can_be_forced_and_agrees_with_onnx(
    data_dir: Path, bundle_v1: Path, client: TestClient, example_row: dict
) -> None:
    settings = ServingSettings(data_dir=data_dir, serving_backend="joblib")
    with TestClient(create_app(settings)) as joblib_client:
        assert joblib_client.get("/health").json()["backend"] == "joblib"
        rows = [
            example_row | {"QUANTITYORDERED": quantity, "MONTH_ID": month, "QTR_ID": (month - 1) // 3 + 1}
            for quantity, month in ((5, 1), (40, 6), (90, 11))
        ]
        joblib_predictions = joblib_client.post("/predict/batch", json={"rows": rows}).json()["predictions"]
    onnx_predictions = client.post("/predict/batch", json={"rows": rows}).json()["predictions"]
    assert joblib_predictions == pytest.approx(onnx_predictions, abs=0.01)


def test_a_leaky_model_says_so_in_health_and_every_answer(
    settings: ServingSettings, models_dir: Path, trained: dict, example_row: dict
) -> None:
    from sales_serving.scoring import LEAKY_MODEL_WARNING
    from sales_tests.serving.bundle_factory import write_bundle

    write_bundle(models_dir, VERSION_1, *trained[VERSION_1], metadata_overrides={"leaky": True})
    with TestClient(create_app(settings)) as leaky:
        assert leaky.get("/health").json()["leaky"] is True
        assert LEAKY_MODEL_WARNING in leaky.post("/predict", json=example_row).json()["warnings"]
        batch = leaky.post("/predict/batch", json={"rows": [example_row, example_row]}).json()
        assert {"row": None, "message": LEAKY_MODEL_WARNING} in batch["warnings"]


def test_the_fast_path_and_the_documented_route_answer_alike(
    settings: ServingSettings, bundle_v1: Path, client: TestClient, example_row: dict
) -> None:
    from sales_serving.fast_predict import PredictFastPath

    app = create_app(settings)
    app.user_middleware = [layer for layer in app.user_middleware if layer.cls is not PredictFastPath]
    with TestClient(app) as routed:
        for path, row in (
            ("/predict", example_row),
            ("/predict?echo_features=true", example_row),
            ("/predict", example_row | {"MONTH_ID": 13}),
            ("/predict", example_row | {"QUANTITYORDERED": True}),
        ):
            fast, slow = client.post(path, json=row), routed.post(path, json=row)
            assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
        malformed = {"content": b'{"MSRP": ', "headers": {"content-type": "application/json"}}
        assert client.post("/predict", **malformed).json() == routed.post("/predict", **malformed).json()


@pytest.mark.parametrize(
    ("promotion", "policy", "promoted"),
    [
        (
            {"promoted": False, "policy": "newest_candidate", "reason": "lost to v0"},
            "newest_candidate",
            False,
        ),
        (None, "unknown", None),
    ],
    ids=["experiment-policy", "bundle-without-promotion"],
)
def test_health_says_which_serving_policy_published_the_model(
    settings: ServingSettings, models_dir: Path, trained: dict, promotion, policy: str, promoted
) -> None:
    from sales_tests.serving.bundle_factory import write_bundle

    write_bundle(models_dir, VERSION_1, *trained[VERSION_1], metadata_overrides={"promotion": promotion})
    with TestClient(create_app(settings)) as served:
        health = served.get("/health").json()
    assert (health["serving_policy"], health["promoted"]) == (policy, promoted)
