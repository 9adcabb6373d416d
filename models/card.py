"""Model cards: what every shipped ``.tflite`` is, how it was made and how well it does.

A card is a JSON file beside its model (``models/beat_cnn.json`` next to
``models/beat_cnn.tflite``). It follows the spirit of Mitchell et al., "Model Cards for Model
Reporting" (FAT* 2019): inputs and their scaling, the sampling rate, labels, training data and
split, float and int8 metrics side by side, size and sha256. The agent loads the card to know
how to feed the model and refuses a model whose bytes do not match the card's sha256.

This module imports nothing from ``agent`` or ``tools`` (DESIGN.md, "Layout").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MODELS_DIR = Path(__file__).resolve().parent
"""Folder of the shipped models and cards."""


class TensorSpec(BaseModel):
    """One input or output tensor of a TFLite model.

    ``scale`` and ``zero_point`` are the int8 quantization parameters
    (``real = scale * (q - zero_point)``); None for float tensors.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    description: str = ""


class ModelCard(BaseModel):
    """The card of one shipped model (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name, e.g. `beat_cnn`.")
    version: str = Field(description="Model version, copied into every alarm it decides.")
    task: str = Field(description="What the model decides, in one line.")
    file: str = Field(description="File name of the model, beside the card.")
    sha256: str = Field(description="sha256 of the model file, hex.")
    size_bytes: int = Field(ge=0)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] = Field(default_factory=list, description="Output index → label.")
    fs_hz: float | None = Field(default=None, description="Sampling rate the model expects, Hz.")
    preprocessing: dict[str, Any] = Field(
        default_factory=dict, description="Window, filters, scaling: how inputs are made."
    )
    training: dict[str, Any] = Field(
        default_factory=dict, description="Data, records, split, seed, epochs, command."
    )
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="Float and int8 metrics side by side, on named sets."
    )
    latency: dict[str, Any] = Field(
        default_factory=dict, description="CPU latency per inference, and how measured."
    )
    edgetpu: dict[str, Any] = Field(
        default_factory=dict, description="Edge TPU compiler result and op compatibility."
    )
    created_utc: str = ""

    @property
    def model_path(self) -> Path:
        """Absolute path of the model, assuming the card lives in :data:`MODELS_DIR`."""
        return MODELS_DIR / self.file


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_card(card_path: Path) -> ModelCard:
    """Read a model card and check the model beside it against its sha256.

    Parameters
    ----------
    card_path
        The ``.json`` card; the model is ``card_path.parent / card.file``.

    Raises
    ------
    FileNotFoundError
        If the card or its model file is missing.
    pydantic.ValidationError
        If the card is malformed.
    ValueError
        If the model's sha256 or size differs from the card's.
    """
    card = ModelCard.model_validate_json(card_path.read_text(encoding="utf-8"))
    model = card_path.parent / card.file
    data = model.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.sha256 or len(data) != card.size_bytes:
        msg = (
            f"{model} does not match its card {card_path.name}: sha256 {digest[:12]}…"
            f" ({len(data)} bytes), card says {card.sha256[:12]}… ({card.size_bytes} bytes)"
        )
        raise ValueError(msg)
    return card


def shipped_card(name: str) -> Path:
    """Path of the card of a shipped model by name (``beat_cnn`` → ``models/beat_cnn.json``)."""
    return MODELS_DIR / f"{name}.json"
