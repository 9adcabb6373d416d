"""VF/VFL detector tooling: window dataset, patient-wise tuning, evaluation report."""
