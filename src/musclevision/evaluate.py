"""``musclevision-eval``: window-, clip- and whole-clip metrics of a checkpoint on keypoint data.

    musclevision-eval ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt [split=val|test|all]

Classes and window come from the checkpoint, so the data's class list is overridden to match
its output order; a class the data lacks is an error, not a silent zero.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from musclevision.hydra_app import hydra_entry, report_error
from musclevision.models.module import ExerciseModule
from musclevision.models.report import name_clips, summary_line, worst_clips, write_report

log = logging.getLogger("musclevision.eval")


def load_module(ckpt_path: str) -> ExerciseModule:
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    return ExerciseModule.load_from_checkpoint(path, map_location="cpu")


def evaluate(cfg: DictConfig) -> dict:
    model = load_module(cfg.ckpt_path)
    with open_dict(cfg):
        cfg.data.classes = model.classes
        cfg.data.window = int(model.hparams.window)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.validate(model, dataloaders=datamodule.eval_loaders(cfg.split, cfg.whole_clips), verbose=False)
    evaluation = {**model.last_eval, "stage": cfg.split, "checkpoint": str(cfg.ckpt_path), "split": datamodule.split.description}
    name_clips(evaluation, [c.video_id for c in datamodule.store(cfg.split).clips])
    write_report(evaluation, Path(HydraConfig.get().runtime.output_dir))
    log.info(summary_line(evaluation))
    for line in worst_clips(evaluation):
        log.info("  worst: %s", line)
    log.info("report in %s", HydraConfig.get().runtime.output_dir)
    return evaluation


def run(cfg: DictConfig) -> int:
    try:
        evaluate(cfg)
    except (FileNotFoundError, ValueError) as exc:
        return report_error("musclevision-eval", exc)
    return 0


main = hydra_entry("eval", run)

if __name__ == "__main__":
    main()
