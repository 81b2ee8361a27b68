"""Printed tables (rich) and PNG bar plots (matplotlib, Agg) of benchmark results."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return value / base


def fmt_ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}×"


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None,
                console=None) -> None:
    """Print a rich table; every cell goes through :func:`fmt`."""
    from rich.console import Console
    from rich.table import Table

    # drop columns with nothing in them (GPU memory on a CPU-only machine, an empty note)
    keep = [i for i in range(len(columns)) if any(row[i] not in (None, "", "–") for row in rows)] or list(range(len(columns)))
    table = Table(title=title, caption=caption, caption_justify="left")
    for i in keep:
        table.add_column(columns[i], justify="left" if i < 2 or i == len(columns) - 1 else "right")
    for row in rows:
        table.add_row(*(fmt(row[i]) for i in keep))
    if console is None:
        console = Console()
        console.width = max(console.width, 150)  # a piped console defaults to 80 columns
    console.print(table)


def try_plot(draw, *args, log=print, **kwargs) -> Path | None:
    """Draw a plot, or say why not: a machine without matplotlib still gets its table and JSON lines."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        log("matplotlib is not installed: no plot drawn")
        return None
    return draw(*args, **kwargs)


def plot_bars(path: Path, *, groups: Sequence[str], series: Sequence[str],
              values: dict[tuple[str, str], float | None], notes: dict[tuple[str, str], str],
              title: str, ylabel: str, log: bool = True) -> Path:
    """Grouped throughput bars (one group per x label, one bar per series), each annotated with
    its note (a ratio to the baseline). Missing values leave a gap labelled with the note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) * max(1, len(series)) / 3), 4.5))
    width = 0.8 / max(1, len(series))
    cmap = plt.get_cmap("tab10")
    top = max([v for v in values.values() if v] or [1.0])
    missing: list[tuple[float, str]] = []
    for j, name in enumerate(series):
        xs, hs = [], []
        for i, g in enumerate(groups):
            v = values.get((g, name))
            x = i - 0.4 + width * (j + 0.5)
            if v:
                xs.append(x)
                hs.append(v)
            note = notes.get((g, name))
            if note and not v:
                missing.append((x, note))
            elif note:
                ax.annotate(note, (x, v), textcoords="offset points", xytext=(0, 3), ha="center",
                            va="bottom", fontsize=7, rotation=90 if len(series) > 3 else 0)
        ax.bar(xs, hs, width=width * 0.95, label=name, color=cmap(j % 10))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=top * 8)
    else:
        ax.set_ylim(top=top * 1.25)
    bottom = ax.get_ylim()[0]
    for x, note in missing:  # a contender that did not run: its note where its bar would stand
        ax.annotate(note, (x, bottom), textcoords="offset points", xytext=(0, 3), ha="center", va="bottom",
                    fontsize=7, rotation=90, color="gray")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", ncol=min(3, len(series)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
