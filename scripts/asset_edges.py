"""Print the asset graph's edges (`upstream -> downstream`, one a line) from the code location's
Definitions, so the README's edge list is derived, not drawn by hand.

    .venv/bin/python scripts/asset_edges.py

The README block between `<!-- asset-edges -->` markers is this output; a test compares the two.
"""

from __future__ import annotations

import dagster as dg


def asset_edges(defs: dg.Definitions) -> list[tuple[str, str]]:
    """(upstream, downstream) asset keys (`/`-joined) of every dependency in `defs`, upstream assets in
    topological order (ties by name), each one's downstream assets by name."""
    graph = defs.resolve_asset_graph()
    edges = []
    for level in graph.toposorted_asset_keys_by_level:
        for upstream in sorted(level, key=dg.AssetKey.to_user_string):
            children = sorted(graph.get(upstream).child_keys, key=dg.AssetKey.to_user_string)
            edges.extend((upstream.to_user_string(), child.to_user_string()) for child in children)
    return edges


def main() -> None:
    from sales_assets.definitions import defs

    for upstream, downstream in asset_edges(defs):
        print(f"{upstream} -> {downstream}")


if __name__ == "__main__":
    main()
