"""Re-export of the IQR filter, which moved to the neutral `sales_assets.outliers` (ml uses it too);
kept until `sales_assets.ml` imports it from there."""

from sales_assets.outliers import IqrFilterResult, iqr_filter

__all__ = ["IqrFilterResult", "iqr_filter"]
