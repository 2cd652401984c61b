"""Evaluation utilities: probes, collapse diagnostics and run reports."""
