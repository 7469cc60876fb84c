"""faust stream processors: normalize, correlate, plan fan-out."""
