"""The beat classifier's life cycle: dataset, training, int8 conversion, model card, scoring.

``python -m tools.beats all --data ../shared/data --out models`` rebuilds ``models/beat_cnn``
from mitdb; see docs/beat_classifier.md.
"""
