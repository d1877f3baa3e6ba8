"""Calibration sets: image-text records in JSONL, validated before any long run."""
