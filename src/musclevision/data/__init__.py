"""Stage 2: keypoint sequences -> training batches. Entry point: :class:`KeypointDataModule`."""

from musclevision.data.clips import ClipData
from musclevision.data.datamodule import KeypointDataModule
from musclevision.extract.cache import KeypointCache

__all__ = ["ClipData", "KeypointCache", "KeypointDataModule"]
