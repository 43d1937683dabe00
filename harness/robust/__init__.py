"""Robustness machinery: offline resources, the victim wrapper, recipe specs, perturbations and
the one adapter module that touches TextAttack (``textattack_adapter``)."""
