"""Streaming ECG signal processing: cleaning, R peaks, heart rate; synchronous and pure."""
