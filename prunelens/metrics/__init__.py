"""Decision metrics (pure numpy, float64): DM, layer accuracy, OF/KL, transition point, bootstrap CIs."""
from .bootstrap import bootstrap_mean_ci
from .decision import (accuracy_by_depth, decision_margin, depth_summary, entropy, kl_divergence, label_distribution,
                       option_frequency, predictions, score_summary, top_share)
from .estimators import IDENTIFIED, NOT_IDENTIFIED, estimators_text, identify, transition_estimators
from .transition import (phases, sustained_crossing, tp_ci_text, transition_point, transition_point_bootstrap,
                         transition_points)

__all__ = [
    "accuracy_by_depth", "bootstrap_mean_ci", "decision_margin", "depth_summary", "entropy", "kl_divergence",
    "label_distribution", "option_frequency", "phases", "predictions", "score_summary", "top_share",
    "tp_ci_text", "transition_point", "transition_point_bootstrap",
    "IDENTIFIED", "NOT_IDENTIFIED", "estimators_text", "identify", "sustained_crossing", "transition_estimators",
    "transition_points",
]
