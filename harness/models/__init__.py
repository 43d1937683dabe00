"""Model adapters (the ``ModelAdapter`` protocol, the Hugging Face adapter) and fine-tuning."""
