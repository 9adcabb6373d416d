"""AF from RR intervals: afdb dataset, LSTM training, int8 conversion, card, evaluation.

``python -m tools.af all --data ../shared/data --out models`` reproduces the shipped model.
"""
