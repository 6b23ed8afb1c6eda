"""`prunelens plan` (issue 13): from dense measurements only, predict how many layers can go and which, with
intervals, and check the prediction (`--verify`) or evaluate the predictor against finished trajectories
(`evaluate.py`, leave-one-(model, task)-out, against the published rules of thumb)."""
