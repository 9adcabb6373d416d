"""Shipped TFLite models and their model cards."""
