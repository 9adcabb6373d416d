"""Offline tools: dataset building, training, conversion, EC57 evaluation, benchmarks."""
