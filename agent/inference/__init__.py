"""Model inference: the TFLite interpreter (CPU or Edge TPU) and the models the agent runs."""
