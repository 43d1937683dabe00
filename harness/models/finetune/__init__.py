"""The fine-tuning stage: the job and its orchestration (``job``), the cache key and digest
(``cache``), data and base model (``prep``), one training run (``training``), the Trainer's
plumbing (``trainer``, ``seeded``), the callbacks (``callbacks``) and the model card (``card``)."""
