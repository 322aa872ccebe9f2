"""Learning from good images only: PatchCore, its metrics, and draft annotations from anomaly maps."""
