"""The model summary printed when training starts: each module's parameters, then the totals (what a reader of a
run's output needs; Lightning's own adds a Mode and a FLOPs column that read 'train' and 0 for these models)."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichModelSummary
from pytorch_lightning.utilities.model_summary import get_formatted_model_size, get_human_readable_count


class ParamsSummary(RichModelSummary):
    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:  # fmt: skip
        from rich import get_console
        from rich.table import Table

        columns = dict(summary_data)  # name -> values, one per module
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        shown = [name for name in ("Name", "Type", "Params", "In sizes", "Out sizes") if name in columns]
        for name in shown:
            table.add_column(name, justify="right" if name == "Params" else "left", no_wrap=name == "Name")
        for row in zip(*(columns[name] for name in shown)):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        frozen = total_parameters - trainable_parameters
        console.print(
            f"[bold]parameters[/]: {get_human_readable_count(int(total_parameters))} "
            + (f"({get_human_readable_count(int(frozen))} frozen) " if frozen else "")
            + f"= {get_formatted_model_size(model_size)} MB"
            + (f"; {get_human_readable_count(int(total_flops))} FLOPs a step" if total_flops else "")
        )
