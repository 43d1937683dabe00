"""Artifact catalog entries; each module registers its artifacts at import (see harness.artifacts)."""
