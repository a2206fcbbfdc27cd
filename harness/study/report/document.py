"""A report as a list of blocks, rendered both as markdown and as HTML so the two never disagree."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd


def threshold_text(t: float) -> str:
    """A threshold as prose and tables print it: four significant digits, enough to tell
    0.5 x real = 3.996 from 4 without the six decimals a relative threshold is computed to."""
    return f"{t:.4g}"


def _label_thresholds(df: pd.DataFrame) -> pd.DataFrame:
    """Threshold columns or index as text, so the table's rows read like the prose around them
    (the tables' three significant digits would print 3.996 as 4)."""
    if df.index.name == "threshold" and pd.api.types.is_float_dtype(df.index):
        df = df.set_axis(df.index.map(threshold_text).rename("threshold"), axis=0)
    if "threshold" in df.columns and pd.api.types.is_float_dtype(df["threshold"]):
        df = df.assign(threshold=df["threshold"].map(threshold_text))
    return df


def md_table(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.3g}") -> str:
    """A pipe table without the tabulate dependency."""
    df = _label_thresholds(df)
    d = df.reset_index() if index else df

    def fmt(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else floatfmt.format(v)
        return str(v)
    lines = ["| " + " | ".join(map(str, d.columns)) + " |", "|" + "---|" * len(d.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


class Document:
    """Headings, paragraphs, tables, images and code, in order."""

    STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
             "text-align:right}img{max-width:100%}")

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, df: pd.DataFrame, index: bool = False) -> None:
        self.blocks.append(("table", df, index))

    def img(self, rel: str, caption: str) -> None:
        self.blocks.append(("img", rel, caption))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    def markdown(self) -> str:
        render = {
            "h": lambda level, text: "#" * level + " " + text,
            "p": lambda text: text,
            "table": lambda df, index: md_table(df, index=index),
            "img": lambda rel, caption: f"![{caption}]({rel})",
            "code": lambda text: "```\n" + text + "\n```",
        }
        return "\n".join(render[kind](*args) + "\n" for kind, *args in self.blocks)

    def html(self, title: str) -> str:
        esc = html.escape
        render = {
            "h": lambda level, text: f"<h{level}>{esc(text)}</h{level}>",
            "p": lambda text: f"<p>{esc(text)}</p>",
            "table": lambda df, index: _label_thresholds(df).to_html(index=index, float_format=lambda v: f"{v:.3g}", na_rep=""),
            "img": lambda rel, caption: (f"<figure><img src='{esc(rel)}'><figcaption>{esc(caption)}"
                                         "</figcaption></figure>"),
            "code": lambda text: f"<pre>{esc(text)}</pre>",
        }
        head = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
                f"<style>{self.STYLE}</style></head><body>")
        return "\n".join([head] + [render[kind](*args) for kind, *args in self.blocks] + ["</body></html>"])
