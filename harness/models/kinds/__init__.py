"""Model kinds: every way of turning a pretrained model into a classifier, each one module that
registers a ``ModelKind`` in ``harness.registry.model_kinds`` (discovery imports every public
module here). ``model.kind`` in a run file names one; its ``model.params`` are the kind's
``Params``. Every kind's adapter is a ``ModelAdapter``; see ``base`` for what a kind declares.
"""
