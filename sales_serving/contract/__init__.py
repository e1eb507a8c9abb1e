"""The contract between training (`sales_assets.ml`) and serving: the one thing training imports from here.

- `publish`: the one publication primitive (write aside, then rename) every writer of a published file,
  folder or pointer uses, training's outputs included.
- `bundle`: the bundle layout (folder, file names, manifest, publication record, CURRENT), writing and
  verifying a bundle and moving CURRENT by atomic rename, and `BundleMetadata`, the pydantic model of metadata.json that training validates before it
  publishes and serving reads.
- `derived`: the derived-feature ops (copy, divide, multiply, season), each defined once; training's pandas
  columns, serving's batch and one-row columns and the ONNX graph's nodes are made from it.
- `estimators`: estimators a bundle's pipeline.joblib may hold (imports scikit-learn; import it only where
  a pipeline is fitted or unpickled).
- `export`: the one reader of sales CSV exports (a package: encoding, lines, header, numbers, dates, the
  `Export` object).
- `csv_out`: the one CSV writer (formula cells neutralised), for every CSV the project writes.
- `formatting`: numbers as a person reads them (money, shares, counts), for every table, page and answer.

This package imports only pydantic and the standard library at module level, so training's code location
stays cheap to import.
"""
