"""Readouts of the decision at every depth beyond the logit lens (issue 12, the referee's objection (a)): an
option-restricted tuned lens (`tuned.py`) and cross-validated linear probes (`probe.py`), on the states of
`states.py`, compared depth by depth with the logit lens through the same transition estimators (`run.py`)."""
