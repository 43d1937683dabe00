"""The one offline rule for the Hugging Face Hub, for models and datasets alike.

huggingface_hub (and transformers and datasets, which read its value) take either variable
below to mean "offline", with the values it counts as true
(``huggingface_hub.constants.ENV_VARS_TRUE_VALUES``). A value counts here when either variable
holds one, whitespace and case aside: a superset of the client's own rule, so the harness never
starts a download that the client would refuse or that would wait on a network that is not
there. Every hub source (``harness.models.sources``, ``harness.datasources``) asks this module
before it touches the network.
"""

from __future__ import annotations

import os

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})
# Seconds a hub request may wait for an answer before it counts as "not available": a network
# that drops packets must fail the run with a message, not hang it.
HUB_TIMEOUT_S = 20.0


def offline_variable() -> str | None:
    """The variable that puts this process offline (see OFFLINE_VARIABLES), or None."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().upper() in TRUE_VALUES:
            return name
    return None
