"""Audit: verify a run folder against its manifest, sign it, replay recorded predictions."""
