"""Robustness machinery: offline resources, the victim wrapper, recipe specs, perturbations, the
one module that imports TextAttack (``textattack_adapter``) and the attacks built on it
(``attacks``)."""
