"""Stage 3: sequence classifiers. Entry point: :class:`ExerciseModule` (LightningModule)."""

from musclevision.models.classifier import SequenceClassifier, build_classifier
from musclevision.models.module import ExerciseModule

__all__ = ["ExerciseModule", "SequenceClassifier", "build_classifier"]
