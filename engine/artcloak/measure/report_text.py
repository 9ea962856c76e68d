"""A protection or verification report in words, for the CLI summary line and the GIMP message.

One text, rendered here in the engine: the worker sends it with its result (the report's "text" and
the done event's "report_text"), the plug-ins show it as it is. plugin/common/artcloak_client.py's
format_report renders the same text for reports that lack it (an older engine); keep the two alike.

The headline is what a model trained on the image would learn: the PSNR of the decoder's copy of the
protected image against its copy of the original after the trainer view (metrics.headline), next to
the PSNR a person sees.
"""
# %-formatting on purpose: the same code as the client's format_report (Python 2.7), kept alike
# ruff: noqa: UP031
from __future__ import annotations

import math
from typing import Any

VIEW_WORDS = {"train512": "after a trainer's resize, 512 px crop and JPEG"}


def transform_name(key: str) -> str:
    """Short names for the report's transforms (jpeg75 -> "JPEG q75", resize512 -> "resize 512 px")."""
    for prefix, text in (("jpeg", "JPEG q%s"), ("resize", "resize %s px"), ("crop", "crop %s%%")):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            return text % key[len(prefix):]
    return {"noisyupscale": "noisy upscale", "train512": "trainer view 512"}.get(key, key)


def _pct(value: float) -> str:
    return "%.1f%%" % (100.0 * value)


def _db(value: Any) -> str:
    return "%.1f dB" % value if value is not None and not math.isinf(value) else "no change"


def _wrap(items: list[str], indent: str, width: int = 88) -> list[str]:
    lines, line = [], indent
    for item in items:
        if line.strip() and len(line) + len(item) + 2 > width:
            lines.append(line.rstrip(", "))
            line = indent
        line += item + ", "
    if line.strip():
        lines.append(line.rstrip(", "))
    return lines


def headline_lines(report: dict) -> list[str]:
    """Two lines for an artist: how much a model trained on the image would change it (copy_psnr
    after the trainer view, lower = stronger) against what a person sees; then which model and
    view, and what that is against random noise of the same visibility. [] without a decoder."""
    from .metrics import headline

    h = report.get("headline") or headline(report)
    if not h:
        return []
    copy, seen = h.get("copy_psnr"), h.get("psnr")
    if copy is None or math.isinf(copy):
        first = "A model trained on this image would reproduce it unchanged: no protection"
    else:
        first = ("A model trained on this image would reproduce it with a change of %.1f dB PSNR "
                 "(lower = stronger)" % copy)
    first += "; you see %s." % _db(seen)
    view = h.get("view") or "clean"
    where = "of the image as it is" if view == "clean" else VIEW_WORDS.get(
        view, "after %s" % transform_name(view))
    second = "  (%s's copy %s" % (h.get("model"), where)
    gain = h.get("copy_over_noise")
    if gain is not None and not math.isinf(gain):
        second += "; %.1f dB %s than random noise of the same visibility" % (
            abs(gain), "stronger" if gain >= 0 else "weaker")
    return [first, second + ")"]


def _model_lines(name: str, figs: dict, summary: dict, order: list[str]) -> list[str]:
    head = "  %s:" % name
    if "latent_shift" in figs:
        head += " moved %s" % _pct(figs["latent_shift"])
        if "noise_ratio" in figs:
            head += " (%.1fx noise)" % figs["noise_ratio"]
    if summary.get("verdict"):
        head += ", %s" % summary["verdict"]
        if summary.get("weakest_view"):
            head += " (weakest: %s, %.1fx)" % (transform_name(summary["weakest_view"]),
                                               summary.get("weakest_noise_ratio", 0.0))
    views = []
    for t in order:
        shift = figs.get("after.%s.latent_shift" % t)
        if shift is None:
            continue
        view = "%s %s" % (transform_name(t), _pct(shift))
        if figs.get("after.%s.noise_ratio" % t) is not None:
            view += " (%.1fx)" % figs["after.%s.noise_ratio" % t]
        views.append(view)
    lines = [head]
    if views:
        lines += _wrap(["after " + views[0]] + views[1:], "    ")
    if "amplification" in figs:
        lines.append("    its decoder shows %.1fx the change a person sees" % figs["amplification"])
    if "copy_psnr" in figs:
        copies = ["clean %s" % _db(figs["copy_psnr"])]
        for t in order:
            if figs.get("after.%s.copy_psnr" % t) is not None:
                copies.append("%s %s" % (transform_name(t), _db(figs["after.%s.copy_psnr" % t])))
        lines += _wrap(["its copy's PSNR (lower = stronger): " + copies[0]] + copies[1:], "    ")
    return lines


def render(report: dict) -> str:
    """The report as a few lines of text: the headline (headline_lines), how far each model's
    latents moved clean and after each transform (with the verdict and weakest view when the report
    has a summary), its copy's PSNR, and the visible cost."""
    if not report:
        return "No report."
    lines = headline_lines(report)
    models = report.get("models") or {}
    summaries = report.get("summary") or {}
    if models:
        lines.append("How far each AI model's view of the image moved "
                     "(plain noise of the same visibility = 1.0x):")
    for name in sorted(models):
        figs = models[name] or {}
        order = list(report.get("transforms") or [])
        for key in figs:
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "after" and parts[1] not in order:
                order.append(parts[1])
        lines += _model_lines(name, figs, summaries.get(name) or {}, order)
    p = report.get("perceptual") or {}
    if p:
        bits = []
        for key, text in (("psnr", "PSNR %.1f dB"), ("ssim", "SSIM %.3f"),
                          ("linf", "largest change %.0f/255"),
                          ("flat_change", "mean change in flat areas %.2f/255"), ("lpips", "LPIPS %.3f")):
            if p.get(key) is not None:
                bits.append(text % p[key])
        lines.append("Visible cost: " + ", ".join(bits))
    return "\n".join(lines) if lines else "No report."
