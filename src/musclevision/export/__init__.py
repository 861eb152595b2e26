"""Stage 4: checkpoint -> ONNX + model card for the page. Entry point: :func:`export_checkpoint`."""

from musclevision.export.exporter import export_checkpoint

__all__ = ["export_checkpoint"]
