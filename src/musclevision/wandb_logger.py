"""Lightning's WandbLogger, minus the stale ``anonymous=None`` it passes to ``wandb.init``.

wandb >= 0.31 deprecates that setting and prints a warning whenever it is present at all, on
every run; nothing a user can do about it, so it is simply not passed.
"""

from __future__ import annotations

from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger


class WandbLogger(_LightningWandbLogger):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)

    @property
    def offline(self) -> bool:
        return bool(self._offline)
