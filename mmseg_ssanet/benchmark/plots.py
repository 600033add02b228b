"""The figures the benchmarks draw (matplotlib, imported when drawing)."""
from typing import Dict, List, Sequence, Tuple


def _axes(figsize):
    import matplotlib
    matplotlib.use('Agg')  # files only, no display
    import matplotlib.pyplot as plt
    return plt, *plt.subplots(figsize=figsize)


def _save(plt, fig, ax, path, title):
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_lines(series: Dict[str, Tuple[str, List[Tuple[float, float]]]],
               path: str, title: str, xlabel: str, ylabel: str) -> None:
    """A log-log line plot: ``series`` maps a label to ``(style,
    points)``; labels without points are left out."""
    plt, fig, ax = _axes((7, 5))
    for label, (style, points) in series.items():
        if points:
            ax.plot(*zip(*sorted(points)), style, label=label)
    ax.set(xscale='log', yscale='log', xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which='both', alpha=0.3)
    _save(plt, fig, ax, path, title)


def save_bars(names: Sequence[str], bars: Dict[str, Sequence[float]],
              path: str, title: str, ylabel: str) -> None:
    """Grouped bars: for each of ``names`` one bar per entry of ``bars``
    (a label -> a value per name), and a line at 1."""
    plt, fig, ax = _axes((7, 4))
    width = 0.8 / max(len(bars), 1)
    for i, (label, values) in enumerate(bars.items()):
        shift = (i - (len(bars) - 1) / 2) * width
        ax.bar([x + shift for x in range(len(names))],
               values,
               width,
               label=label)
    ax.set_xticks(list(range(len(names))))
    ax.set_xticklabels(names)
    ax.set_ylabel(ylabel)
    ax.axhline(1.0, color='grey', lw=0.8)
    _save(plt, fig, ax, path, title)
