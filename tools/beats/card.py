"""Write the beat model's card (``models/beat_cnn.json``, :class:`models.card.ModelCard`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from agent.inference import beat_features as bf
from agent.inference.tflite import load_model
from models.card import ModelCard, TensorSpec, sha256_file
from tools.beats.dataset import DS1, DS2, LABELS, PACED


def write_card(
    tflite_path: Path,
    *,
    version: str,
    training: dict[str, Any],
    metrics: dict[str, Any],
    latency: dict[str, Any],
    edgetpu: dict[str, Any],
) -> Path:
    """Write ``<model>.json`` beside ``tflite_path`` and return its path.

    Tensor names, shapes and int8 scale / zero point are read from the model itself.
    """
    model = load_model(tflite_path)
    descriptions = {
        "window": f"beat window and template, {bf.WINDOW_LEN} samples at {bf.MODEL_FS_HZ:g} Hz,"
        f" R-peak at sample {round(bf.WINDOW_PRE_S * bf.MODEL_FS_HZ)}: channel 0 beat_window,"
        " channel 1 BeatTemplateTracker median of the preceding beats",
        "rr": "RR features " + ", ".join(bf.RR_FEATURE_NAMES) + " (RrFeatures.as_array)",
    }

    def spec(t: Any, desc: str) -> TensorSpec:  # noqa: ANN401
        return TensorSpec(
            name=t.name,
            shape=list(t.shape),
            dtype=str(t.dtype),
            scale=t.scale if t.quantized else None,
            zero_point=t.zero_point if t.quantized else None,
            description=desc,
        )

    inputs = [
        spec(t, next((d for k, d in descriptions.items() if k in t.name), "")) for t in model.inputs
    ]
    outputs = [spec(t, "class probabilities (softmax), order = labels") for t in model.outputs]
    card = ModelCard(
        name=tflite_path.stem,
        version=version,
        task="AAMI EC57 heartbeat class (N, S, V, F, Q) of one beat from one ECG lead",
        file=tflite_path.name,
        sha256=sha256_file(tflite_path),
        size_bytes=tflite_path.stat().st_size,
        inputs=inputs,
        outputs=outputs,
        labels=list(LABELS),
        fs_hz=bf.MODEL_FS_HZ,
        preprocessing={
            "function": "agent.inference.beat_features.beat_window",
            "rr_features": "agent.inference.beat_features.RrFeatureTracker (causal, one beat late)",
            "window_pre_s": bf.WINDOW_PRE_S,
            "window_post_s": bf.WINDOW_POST_S,
            "window_len": bf.WINDOW_LEN,
            "segment_pre_s": bf.SEGMENT_PRE_S,
            "segment_post_s": bf.SEGMENT_POST_S,
            "resampling": "scipy.signal.resample_poly to 128 Hz, sub-sample R alignment",
            "bandpass_hz": list(bf.BANDPASS_HZ),
            "bandpass": f"Butterworth order {bf.BANDPASS_ORDER}, zero phase (sosfiltfilt)",
            "scaling": training.get("scaling", bf.DEFAULT_SCALING),
            "rr_feature_names": list(bf.RR_FEATURE_NAMES),
            "local_rr_beats": bf.LOCAL_RR_BEATS,
            "template": "agent.inference.beat_features.BeatTemplateTracker",
            "template_beats": bf.TEMPLATE_BEATS,
            "long_rr_window_s": bf.LONG_RR_WINDOW_S,
        },
        training={
            "data": "MIT-BIH Arrhythmia Database (mitdb), lead MLII, reference annotations",
            "split": "de Chazal 2004 inter-patient: DS1 train/validate, DS2 test only",
            "ds1": list(DS1),
            "ds2": list(DS2),
            "excluded_paced": list(PACED),
            **training,
        },
        metrics=metrics,
        latency=latency,
        edgetpu=edgetpu,
        created_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    card_path = tflite_path.with_suffix(".json")
    card_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return card_path
