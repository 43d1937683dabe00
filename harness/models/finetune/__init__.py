"""The fine-tuning stage: the job and its cache (``job``), data and base model (``prep``),
the training loop (``trainer``) and the model card (``card``)."""
