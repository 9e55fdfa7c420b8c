"""Trust in a trained run: per-sample attributions (`explain`), permutation importance
(`importance`), and the report section that shows both (`explanations`)."""
