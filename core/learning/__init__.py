"""Learning from deviations: segment quantile models, findings, the forecast ledger, runs."""
