"""Judging what the boots measured: statistics, per-check and run verdicts, calibration, console
splats and crashes, KTAP, the upstream referee's agreement."""
