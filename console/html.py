"""The pieces every page is made of: the layout, escaped text, tables, numbers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

NAV = (("/", "Loop"), ("/models", "Models"), ("/review", "Review"))

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:8px 20px;display:flex;gap:18px;align-items:center}
header a{color:#c9d3e6;text-decoration:none}header a.on{color:#fff;font-weight:600}
header b{margin-right:12px}main{padding:12px 20px;max-width:1280px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px;margin:0 0 14px}
h2{font-size:15px;margin:2px 0 8px}table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 8px;border-bottom:1px solid #eceff3;text-align:left;vertical-align:top}
th{background:#f0f2f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:14px}
.msg{padding:8px 12px;border-radius:6px;margin:0 0 12px;background:#e6f4ea}.msg.err{background:#fde8e8}
.muted{color:#6b7385}code{font-size:12px}button{cursor:pointer}
.bar{background:#e6e9ef;height:14px;border-radius:7px;overflow:hidden;width:320px}
.bar>div{background:#3b6fd8;height:100%}
.pair{display:flex;gap:12px;flex-wrap:wrap}.pair figure{margin:0;text-align:center}
.pair img{width:300px;border-radius:4px;border:1px solid #dde1e8}
kbd{border:1px solid #aab;border-radius:3px;padding:0 4px;background:#fff;font-size:12px}
fieldset{border:1px solid #dde1e8;border-radius:6px;margin:6px 0}
"""


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return e(value)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], raw: bool = False) -> str:
    """An HTML table; cells are escaped (numbers formatted) unless ``raw`` (already HTML)."""
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for v in row:
            numeric = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f"<td class='n'>{num(v)}</td>" if numeric else f"<td>{v if raw else num(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f"<tr><td colspan='{len(columns)}' class='muted'>nothing yet</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def section(title: str, body: str, id_: str = "") -> str:
    anchor = f" id='{e(id_)}'" if id_ else ""
    return f"<section{anchor}><h2>{e(title)}</h2>{body}</section>"


def page(title: str, active: str, body: str, message: str = "", error: bool = False, script: str = "") -> str:
    nav = "".join(f"<a href='{href}' class='{'on' if name == active else ''}'>{name}</a>" for href, name in NAV)
    note = f"<div class='msg{' err' if error else ''}' role='status'>{e(message)}</div>" if message else ""
    js = f"<script>{script}</script>" if script else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)} · toneflow</title>"
            f"<style>{_CSS}</style></head><body><header><b>toneflow</b>{nav}</header>"
            f"<main>{note}{body}</main>{js}</body></html>")
