"""A report as a list of blocks, rendered both as markdown and as HTML so the two never disagree."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

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


def md_cell(v) -> str:
    """A cell's text as a pipe table can hold it: '|' escaped (a method named 'a|b' would
    otherwise split its row), with any backslashes right before it doubled so that they stay
    text, and line breaks as spaces."""
    text = str(v).replace("\r", " ").replace("\n", " ")
    return re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text)


def md_table(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.3g}") -> str:
    """A pipe table without the tabulate dependency."""
    df = _label_thresholds(df)
    d = df.reset_index() if index else df

    def fmt(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else floatfmt.format(v)
        return md_cell(v)
    lines = ["| " + " | ".join(map(md_cell, d.columns)) + " |", "|" + "---|" * len(d.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


def html_table(df: pd.DataFrame, index: bool = False) -> str:
    """A table with one header row: index names and column names share it, so pandas' empty
    second header row (`A \\ B`, `objective`, `threshold` alone on a line) never appears."""
    d = _label_thresholds(df)
    if index:
        names = [n if n is not None else "" for n in d.index.names]
        if isinstance(d.columns, pd.MultiIndex):
            d = d.copy()
            d.columns = [" ".join(map(str, c)).strip() for c in d.columns]
        label = " \\ ".join(filter(None, [" / ".join(filter(None, names)), d.columns.name or ""]))
        d = d.rename_axis(columns=None).reset_index()
        if label and len(names) == 1:
            d = d.rename(columns={d.columns[0]: label})
    d = d.rename_axis(columns=None)
    return d.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="", border=0)


class Document:
    """Headings, paragraphs, tables, images and code, in order."""

    STYLE = ("body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;"
             "max-width:1100px;margin:2em auto;padding:0 1em}"
             "h1{font-size:1.6em;border-bottom:2px solid #2b6cb0;padding-bottom:.2em}"
             "h2{font-size:1.25em;margin-top:1.8em;color:#2b4c7e}h3{font-size:1.05em}"
             "table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px;"
             "font-variant-numeric:tabular-nums}"
             "th{background:#eef2f8;font-weight:600;text-align:center}"
             "td,th{border:1px solid #d5dbe5;padding:3px 9px}td{text-align:right}"
             "td:first-child,th:first-child{text-align:left}tbody tr:nth-child(even){background:#f8fafc}"
             "figure{display:inline-block;vertical-align:top;margin:.5em 1em .5em 0;max-width:100%}"
             "figure img{max-width:100%;border:1px solid #e2e8f0}"
             "figcaption{font-size:12px;color:#556;max-width:520px}"
             "pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:12px}")

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

    def html(self, title: str, base: str | Path | None = None) -> str:
        """One self-contained page: images under `base` are embedded (data URIs), so the file
        opens anywhere and travels as one attachment (MLflow's artifact view included)."""
        esc = html.escape

        def src(rel: str) -> str:
            path = Path(base) / rel if base is not None else None
            if path is not None and path.is_file() and path.suffix.lower() == ".png":
                return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            return rel
        render = {
            "h": lambda level, text: f"<h{level}>{esc(text)}</h{level}>",
            "p": lambda text: f"<p>{esc(text)}</p>",
            "table": lambda df, index: html_table(df, index),
            "img": lambda rel, caption: (f"<figure><img src='{esc(src(rel))}' alt='{esc(caption)}'>"
                                         f"<figcaption>{esc(caption)}</figcaption></figure>"),
            "code": lambda text: f"<pre>{esc(text)}</pre>",
        }
        head = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
                f"<style>{self.STYLE}</style></head><body>")
        return "\n".join([head] + [render[kind](*args) for kind, *args in self.blocks] + ["</body></html>"])
