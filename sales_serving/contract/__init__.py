"""The contract between training (`sales_assets.ml`) and serving: the one thing training imports from here.

- `bundle`: the bundle layout (folder, file names, CURRENT), writing a bundle and moving CURRENT by atomic
  rename, and `BundleMetadata`, the pydantic model of metadata.json that training validates before it
  publishes and serving reads.
- `estimators`: estimators a bundle's pipeline.joblib may hold (imports scikit-learn; import it only where
  a pipeline is fitted or unpickled).
- `export`: the one reader of sales CSV exports.
- `formatting`: numbers as a person reads them (money, shares, counts), for every table, page and answer.

This package imports only pydantic and the standard library at module level, so training's code location
stays cheap to import.
"""
