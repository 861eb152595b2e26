"""``ExerciseModule``: the thin LightningModule around :class:`SequenceClassifier`.

It owns the loss, the optimizer/scheduler (Hydra partials) and metric logging. The network
is rebuilt from the plain ``net`` dict stored in the checkpoint's hyperparameters, so
``load_checkpoint(path)`` is all export and evaluation need.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from musclevision.data.windows import ClipIdentities
from musclevision.models.classifier import Ensemble, build_classifier
from musclevision.models.metrics import LEVELS, EvalCollector

EVAL_VIEWS = ("window", "wholeclip")  # dataloader 0: windows of the live length; 1: whole clips (clip-trained models)


def plain(value):
    """Config objects -> plain dicts/lists, so checkpoints load with torch.load(weights_only=True)."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def eval_clips(trainer: pl.Trainer, stage: str) -> ClipIdentities | None:
    """The clips behind the ``clip`` index of the evaluated batches, as the window loader's dataset declares them
    (:class:`ClipIdentities`). A loader of one's own without them: clip scores cover only clips with a window, and
    clips are not named (a warning says so)."""
    loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
    first = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    dataset = getattr(first, "dataset", None)
    if isinstance(dataset, ClipIdentities):
        return dataset
    rank_zero_warn(f"{type(dataset).__name__} does not declare its clips (data.windows.ClipIdentities): clip-level "
                   "metrics count only clips with a window", category=UserWarning)  # fmt: skip
    return None


class ExerciseModule(pl.LightningModule):
    """``net`` holds the architecture (``arch``, ``features``, layers, dropout); ``hidden_size`` its width (the
    sweep knob); ``optimizer``/``scheduler`` are ``_target_`` dicts (``_partial_: true``) built in configure_optimizers."""

    def __init__(self, net: dict, classes: list[str], window: int, optimizer: dict, scheduler: dict | None = None,
                 hidden_size: int = 64, scheduler_interval: str = "epoch", label_smoothing: float = 0.0):  # fmt: skip
        super().__init__()
        net, classes, optimizer, scheduler = plain(net), plain(classes), plain(optimizer), plain(scheduler)
        self.save_hyperparameters(logger=False)
        self.net = build_classifier(len(classes), hidden_size=hidden_size, **net)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.collectors = {view: EvalCollector(len(classes)) for view in EVAL_VIEWS}
        self.last_eval: dict = {}  # metrics of the latest validation/test pass, for reports
        self.run_config: dict = {}  # the full training config, stored in checkpoints for export

    @property
    def classes(self) -> list[str]:
        return list(self.hparams.classes)

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(landmarks, world if self.net.uses_world else None)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["landmarks"], batch["world"])
        loss = self.criterion(logits, batch["label"])
        acc = (logits.argmax(-1) == batch["label"]).float().mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log("train/acc", acc, prog_bar=True, batch_size=len(logits))
        return loss

    def _eval_step(self, stage: str, batch: dict, dataloader_idx: int) -> None:
        logits = self(batch["landmarks"], batch["world"])
        view = EVAL_VIEWS[dataloader_idx]
        self.collectors[view].update(torch.softmax(logits, -1), batch["label"], batch["clip"])
        if view == "window":
            loss = self.criterion(logits, batch["label"])
            self.log(f"{stage}/loss", loss, batch_size=len(logits), add_dataloader_idx=False)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch, dataloader_idx)

    def _eval_epoch_end(self, stage: str) -> None:
        results = {}
        clips = eval_clips(self.trainer, stage)
        if self.collectors["window"]:
            labels = None if clips is None else torch.as_tensor(clips.clip_labels)
            results.update(self.collectors["window"].compute(clip_labels=labels))
            if clips is not None and "per_clip" in results:
                results["per_clip"]["video_id"] = [clips.clip_names[i] for i in results["per_clip"]["clip"]]
        if self.collectors["wholeclip"]:
            results["wholeclip"] = self.collectors["wholeclip"].compute(clip_level=False)["window"]
        for collector in self.collectors.values():
            collector.reset()
        for level, metrics in results.items():
            if level not in LEVELS:
                continue
            self.log(f"{stage}/{level}_acc", metrics["acc"], prog_bar=level != "wholeclip")
            self.log(f"{stage}/{level}_bacc", metrics["bacc"], prog_bar=level == "window")
            for name, value in zip(self.classes, metrics["per_class"], strict=True):
                if value is not None:
                    self.log(f"{stage}/{level}_acc_{name}", value)
        self.last_eval = {"stage": stage, "epoch": self.current_epoch, "classes": self.classes, **results}

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["musclevision"] = {"config": self.run_config}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.run_config = checkpoint.get("musclevision", {}).get("config", {})

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optimizer)(params=self.parameters())
        if self.hparams.scheduler is None:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval}}


def read_checkpoint(ckpt_path, option: str, load):
    """``load(path)`` of a checkpoint file; a clear error, naming ``option``, for a missing or foreign file."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"{option}={ckpt_path} does not exist")
    try:
        return load(path)
    except (pickle.UnpicklingError, EOFError, KeyError) as exc:  # a text file, a truncated download, not a torch file
        # The unpickler's own text (an opcode, torch's weights_only advice) means nothing here; its type stays.
        raise ValueError(
            f"{option}={ckpt_path} is not a MuscleVision checkpoint (loading it raised {type(exc).__name__}): "
            "give a training run's checkpoints/last.ckpt, or train again if the file was damaged"
        ) from exc
    except Exception as exc:  # another program's .ckpt, another version's, an unreadable file: its own words help
        raised = f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{option}={ckpt_path} could not be loaded as a MuscleVision checkpoint ({raised})") from exc


def load_checkpoint(ckpt_path) -> ExerciseModule:
    """The module of a training checkpoint, on CPU; a clear error for a missing or foreign file."""
    return read_checkpoint(ckpt_path, "ckpt_path", lambda path: ExerciseModule.load_from_checkpoint(path, map_location="cpu"))


def _weights_and_classes(path: Path) -> tuple[dict, list]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint["state_dict"], list(checkpoint["hyper_parameters"]["classes"])


def matching_weights(ckpt_path, model: ExerciseModule, option: str, advice: str) -> dict:
    """The network weights of a checkpoint, after refusing one that is missing, not MuscleVision's, or holds
    another network than ``model`` (other classes or their order, other shapes). ``option`` (ckpt_path, init_ckpt)
    names the setting in the errors; ``advice`` says what to do about a network that differs."""
    state, classes = read_checkpoint(ckpt_path, option, _weights_and_classes)
    if classes != model.classes:
        raise ValueError(f"{option}={ckpt_path} predicts {classes}, this run {model.classes}: {advice}")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    differ = [f"{k}: checkpoint {theirs.get(k)}, this model {ours.get(k)}" for k in sorted(set(ours) | set(theirs))
              if ours.get(k) != theirs.get(k)]  # fmt: skip
    if differ:
        raise ValueError(f"{option}={ckpt_path} holds another model than this configuration ({'; '.join(differ[:3])}): {advice}")
    return state


def check_resumable(ckpt_path, model: ExerciseModule) -> None:
    """Refuse, before training, a checkpoint to resume that is not MuscleVision's or holds another model than ``model``."""
    advice = "resume with the model options it was trained with, or train without ckpt_path"
    matching_weights(ckpt_path, model, "ckpt_path", advice)


def load_weights(model: ExerciseModule, ckpt_path) -> None:
    """Copy a checkpoint's network weights into ``model`` (pre-training -> fine-tuning). Only the weights: the
    optimizer, epoch and data are the new run's. The networks must match (architecture, features, classes)."""
    advice = "pre-train with the same classes, model and feature settings as this run"
    model.load_state_dict(matching_weights(ckpt_path, model, "init_ckpt", advice))


def window_policy_of(module: ExerciseModule) -> dict:
    """What a network's windows are: slots, frame rate, slots with a person needed (from its training config)."""
    data = module.run_config.get("data", {})
    return {"window": int(module.hparams.window), "fps": data.get("fps"), "min_detected": int(data.get("min_detected", 1))}


def check_members(modules: list[ExerciseModule], ckpt_paths: list) -> None:
    """An ensemble averages probabilities of the same classes over the same windows: refuse members that differ in
    classes (or their order) or window policy."""
    for module, path in zip(modules[1:], ckpt_paths[1:]):
        for what, get in (("classes", lambda m: m.classes), ("window policy", window_policy_of)):
            if get(module) != get(modules[0]):
                raise ValueError(f"ensemble members differ in {what}: {ckpt_paths[0]} has {get(modules[0])}, {path} has "
                                 f"{get(module)}; an ensemble averages the same classes over the same windows")  # fmt: skip


def ensemble_module(modules: list[ExerciseModule], ckpt_paths: list) -> ExerciseModule:
    """Several loaded checkpoints as one module: the first one's settings around an :class:`Ensemble` of all their
    networks (for evaluation); members must share classes and window policy."""
    check_members(modules, ckpt_paths)
    modules[0].net = Ensemble([m.net for m in modules])
    return modules[0]
