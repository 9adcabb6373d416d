"""Rhythm detectors over RR intervals and the ECG waveform (AF, VF/VFL/VT)."""
