"""The classifier's Prometheus metrics: verdicts, scores and time per article."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.metrics import STAGE_SECONDS, Observers, prime

CLASSIFICATIONS = Counter(
    "vigil_classifications_total", "Classifier verdicts (flagged, not_flagged).", ["verdict"]
)
CLASSIFY_SECONDS = Observers(
    Histogram(
        "vigil_classification_duration_seconds",
        "Time to classify one article.",
        buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
    ),
    STAGE_SECONDS.labels("classify"),
)
CLASSIFY_SCORE = Histogram(
    "vigil_classification_score",
    "Scores given by the classifier.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)

prime(CLASSIFICATIONS, ["flagged", "not_flagged"])
