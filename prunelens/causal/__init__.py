"""Causal tests of why pruning collapses (issue 12): restore-patching of dense states into a pruned model
(`restore.py`), and the effect of skipping one layer on every later layer and on the decision (`skip.py`).
`patch.py` holds the hooks both use."""
from .patch import record_residuals, patch_residual, ForwardCalls
from .restore import restore_curve, matching_depths
from .skip import skip_effects

__all__ = ["record_residuals", "patch_residual", "ForwardCalls", "restore_curve", "matching_depths", "skip_effects"]
