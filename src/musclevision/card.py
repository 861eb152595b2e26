"""The model card: the one contract between the exporter and everything that runs an exported model.

``musclevision-export`` writes it next to the ONNX file; the server, the page and the replay read it.
It is defined once, here, as a typed model. Python validates with it directly; the page validates
with the JSON Schema generated from it (``card_schema()``, written into the page's generated module
at set-up), and a test checks that both accept and refuse the same cards.

The **window policy** is in it: how the live input is turned into the classifier's windows and the
windows into what the page shows. Evaluation, replay and the page read these same values, so what
is scored is what is shown.

Cards hold no absolute paths: the ONNX file is named relative to the card, other paths relative
to the project (or left out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CARD_FORMAT = "musclevision-model-card/2"
SYNTHETIC_WARNING = "trained on synthetic data: for trying the pipeline, not for real use"
# A file name, no folder: "best.onnx". A relative path: "logs/run/checkpoints/last.ckpt" (no leading
# slash, no backslash or drive colon). Patterns stay in the syntax that pydantic (Rust regex) and JavaScript share.
FILE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$"
RELATIVE_PATH = r"^[^/\\:]+(/[^/\\:]+)*$"

Name = Annotated[str, Field(pattern=FILE_NAME, max_length=200)]


class _Strict(BaseModel):
    # strict: "25" is not a number, true is not an integer (as in JSON Schema, so the page agrees);
    # forbid: a misspelt key is an error, not silently ignored.
    model_config = ConfigDict(strict=True, extra="forbid")


# The "unknown / no exercise" threshold of a model exported without a calibration (musclevision-calibrate
# chooses one from held-out windows, and the exporter takes that instead).
DEFAULT_THRESHOLD = 0.6


class WindowPolicy(_Strict):
    """How frames become classifier windows, and windows become what the page shows."""

    fps: float = Field(gt=0, le=240, description="the model's frame rate: window slots are 1/fps seconds apart")
    window: int = Field(ge=1, le=1024, description="slots per window (the newest frame is the last slot)")
    min_detected: int = Field(ge=1, le=1024, description="slots with a person needed before a window is classified")
    smoothing_s: float = Field(ge=0, le=10, description="time constant of the probability smoothing (0 = none)")
    threshold: float = Field(gt=0, lt=1, description="top smoothed probability below this: 'unknown / no exercise'")


class TensorSpec(_Strict):
    name: Literal["landmarks", "world", "probabilities"]
    shape: list[str | int]
    dtype: Literal["float32"]
    missing: Literal["nan"] | None = None
    layout: str | None = None


class PoseModel(BaseModel):
    """The extractor settings the training keypoints were made with; the page must use the same.

    A setting a card does not record means the extractor's value from before it existed: the defaults in the JSON
    Schema (``absent()``), which the page's fallbacks are read from too."""

    # extra allowed: every extractor setting (PoseSettings.cache_key()) is recorded here as it is. The untyped ones
    # that have a meaning when absent are in the schema with a default and no constraint, so validation and card
    # dumps stay as they were (typed fields would add them to every dump).
    model_config = ConfigDict(
        strict=True,
        extra="allow",
        json_schema_extra=lambda schema: schema["properties"].update(
            rotations={"default": [], "description": "degrees clockwise to retry a frame at when no one is found"},
            retry_every={"default": 1, "description": "while no one is found: retry other views every n-th frame"},
            selector={"default": None, "description": "num_poses > 1: the exerciser rule and its parameters"},
        ),
    )
    variant: Literal["lite", "full", "heavy"]
    bundle: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.task$")]
    bundle_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    num_poses: int = Field(default=1, ge=1, le=10)
    people_check_s: float = Field(default=0, ge=0, le=3600, description="num_poses > 1: seconds between several-people checks")
    zoom_out: float = Field(
        default=1,
        ge=1,
        le=4,
        description="> 1: retry each orientation on the frame shrunk into a canvas this many times as large",
    )
    min_pose_detection_confidence: float = Field(default=0.5, ge=0, le=1)
    min_pose_presence_confidence: float = Field(default=0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(default=0.5, ge=0, le=1)

    @classmethod
    def absent(cls) -> dict:
        """What each setting with a default means when a card leaves it out (``{"rotations": [], "zoom_out": 1, ...}``)."""
        return {k: p["default"] for k, p in cls.model_json_schema()["properties"].items() if "default" in p}


class Calibration(_Strict):
    temperature: float = Field(gt=0, description="logits are divided by this inside the exported graph")
    ece_before: float | None = Field(default=None, ge=0, le=1)
    ece_after: float | None = Field(default=None, ge=0, le=1)
    measured_on: str | None = None


class Member(BaseModel):
    """One network of an ensemble (its training, as a single model's card records it under ``training``)."""

    model_config = ConfigDict(strict=True, extra="allow")
    checkpoint: Annotated[str, Field(pattern=RELATIVE_PATH)] | None = None


class Training(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    data_kind: Literal["real", "synthetic"]
    warning: str | None = Field(default=None, description="shown by the server and the page when set")
    checkpoint: Annotated[str, Field(pattern=RELATIVE_PATH)] | None = None
    members: list[Member] | None = Field(
        default=None, min_length=2, description="an ensemble: the graph outputs the mean of these networks' probabilities"
    )


class ModelCard(_Strict):
    format: Literal["musclevision-model-card/2"]
    name: Name
    onnx: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.onnx$", description="next to the card")]
    classes: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=100, json_schema_extra={"uniqueItems": True}
    )
    inputs: list[TensorSpec] = Field(
        min_length=1, max_length=2, json_schema_extra={"contains": {"properties": {"name": {"const": "landmarks"}}}}
    )
    outputs: list[TensorSpec] = Field(min_length=1, max_length=1)
    opset: int = Field(ge=7, le=30)
    window_policy: WindowPolicy
    pose_model: PoseModel
    calibration: Calibration | None = None
    training: Training
    metrics: dict = Field(default_factory=dict)
    parity: dict = Field(default_factory=dict)
    created: str | None = None

    # The two constraints pydantic cannot generate: each sits beside its JSON Schema twin above.
    @field_validator("classes")
    @classmethod
    def _distinct(cls, classes: list[str]) -> list[str]:
        if len(set(classes)) != len(classes):
            raise ValueError("class names must be distinct")
        return classes

    @field_validator("inputs")
    @classmethod
    def _landmarks_input(cls, inputs: list[TensorSpec]) -> list[TensorSpec]:
        if not any(i.name == "landmarks" for i in inputs):
            raise ValueError("must include the 'landmarks' input")
        return inputs

    @property
    def uses_world(self) -> bool:
        return any(i.name == "world" for i in self.inputs)


def card_schema() -> dict:
    """The JSON Schema of :class:`ModelCard` (what the page validates cards with)."""
    return ModelCard.model_json_schema()


class CardError(ValueError):
    """A model card that cannot be used; the message names the file and the first problem."""


def validate_card(card: dict, where: str = "model card") -> ModelCard:
    """The typed card, or a CardError like ``model card x.json: window_policy.fps: Input should be greater than 0``."""
    if (
        isinstance(card, dict)
        and card.get("format") != CARD_FORMAT
        and str(card.get("format", "")).startswith("musclevision-model-card/")
    ):
        raise CardError(f"{where}: format {card.get('format')!r} is from another musclevision version (this one reads "
                        f"{CARD_FORMAT!r}); re-export the model with musclevision-export")  # fmt: skip
    try:
        return ModelCard.model_validate(card)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise CardError(f"{where}: {location}: {first['msg']}{more}") from None


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a card file; CardError names the file for every problem (missing, not JSON, invalid)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        raise CardError(f"{path} is the ONNX model, not its model card: give {path.with_suffix('.json')}, which "
                        "musclevision-export writes beside it")  # fmt: skip
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CardError(f"model card {path} does not exist; export one with musclevision-export") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"model card {path} cannot be read as JSON ({exc})") from None
    return validate_card(data, f"model card {path}")
