"""The serving gate: CURRENT moves to a candidate only when it won its promotion (policy "champion"), or
to every candidate under "newest_candidate", never to one whose ONNX parity failed."""

import pytest

from sales_assets.ml.bundle import serving_gate

PROMOTED = {"promote": True, "reason": "first champion: no model carried the alias yet"}
KEPT = {"promote": False, "reason": "held-out RMSE 510.00 does not beat the champion's 500.00"}


@pytest.mark.parametrize(
    ("promotion", "policy", "parity", "moves"),
    [
        (PROMOTED, "champion", True, True),
        (KEPT, "champion", True, False),
        (KEPT, "newest_candidate", True, True),
        (PROMOTED, "champion", False, False),
        (KEPT, "newest_candidate", False, False),
    ],
)
def test_current_moves_only_through_the_gate(promotion, policy, parity, moves):
    gate = serving_gate(promotion, policy, parity)
    assert gate.make_current is moves
    assert gate.promoted is promotion["promote"] and gate.policy == policy
    assert promotion["reason"] in gate.reason
    assert gate.as_dict() == {"promoted": promotion["promote"], "policy": policy, "reason": gate.reason}
