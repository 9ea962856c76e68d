"""A protection or verification report in words: rendered here, in the engine, and nowhere else.

`render` gives the text every report carries as its "text": the worker sends it (the done event's
"report_text"), the plug-ins show it as it is, and `artcloak protect` prints it under each file.
`table` gives `artcloak verify`'s detailed table of the same figures.

The headline is what a model trained on the image would learn: the PSNR of the decoder's copy of the
protected image against its copy of the original after the trainer view (headline below), next to
the PSNR a person sees.
"""
# %-formatting: the format strings are data in the tables below
# ruff: noqa: UP031
from __future__ import annotations

import math
from typing import Any

HEADLINE_VIEW = "train512"  # the view the reports' headline copy_psnr is taken after
TRAIN_CROP_SIDE = 512  # its crop (metrics.TRAIN_CROP, which imports this module)
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


def headline(report: dict, view: str = HEADLINE_VIEW) -> dict | None:
    """The reports' headline: the copy_psnr (and copy_over_noise) of the first model with a decoder
    after `view` (the clean view when the report lacks it), next to the PSNR a person sees.
    None when no model has a decoder."""
    for name, figs in (report.get("models") or {}).items():
        if not any(k.endswith("copy_psnr") for k in figs):
            continue
        seen = view if f"after.{view}.copy_psnr" in figs else "clean"
        if seen == "clean" and "copy_psnr" not in figs:
            seen = next(k for k in figs if k.endswith(".copy_psnr"))[len("after."):-len(".copy_psnr")]
        prefix = "" if seen == "clean" else f"after.{seen}."
        head = {"model": name, "view": seen, "copy_psnr": figs[prefix + "copy_psnr"],
                "copy_over_noise": figs.get(prefix + "copy_over_noise"),
                "psnr": (report.get("perceptual") or {}).get("psnr")}
        window = ((report.get("windows") or {}).get(name) or {}).get("copy_side")
        if window is not None:  # the side of the trainer view's window its copy was decoded on
            head["window"] = window
        return head
    return None


def headline_lines(report: dict) -> list[str]:
    """Two lines for an artist: how much a model trained on the image would change it (copy_psnr
    after the trainer view, lower = stronger) against what a person sees; then which model and
    view, and what that is against random noise of the same visibility. [] without a decoder."""
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
    lines = [first, second + ")"]
    if view == HEADLINE_VIEW and h.get("window") and h["window"] < TRAIN_CROP_SIDE:
        lines.append("  (measured on a %d px window of the trainer's %d px crop, to be quick; "
                     "`artcloak verify` measures the whole crop)" % (h["window"], TRAIN_CROP_SIDE))
    return lines


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


def text_of(report: dict) -> str:
    """The report's text: its "text" when it has one, else rendered (and kept there)."""
    if not report.get("text"):
        report["text"] = render(report)
    return report["text"]


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
    lines += _run_lines(report)
    return "\n".join(lines) if lines else "No report."


def _run_lines(report: dict) -> list[str]:
    """What a protection ran: the models it attacked, and where and in which precision (and why)."""
    lines = []
    if report.get("models_used"):
        measured = sorted(report.get("models") or {})
        rest = "" if set(report["models_used"]) <= set(measured) else " (the others: `artcloak verify`)"
        lines.append("Attacked: %s; measured: %s%s." % (", ".join(report["models_used"]),
                                                       ", ".join(measured) or "none", rest))
    small = sorted({w["side"] for w in (report.get("windows") or {}).values()})
    if len(small) > 1:
        lines.append("(the models after the first are measured on %d px windows, so the report costs the "
                     "same however many are installed)" % small[0])
    rt = report.get("runtime")
    if rt:
        lines.append("Ran on %s, precision %s, %s threads (%s)." % (rt.get("device"), rt.get("precision"),
                                                                     rt.get("threads"), rt.get("reason")))
    return lines


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(rep: dict) -> str:
    """The verify report as a table a person can read (`artcloak verify`): what a person sees, each
    model's figures per view, the verdicts, the headline and the 'do not train' metadata found."""
    p = rep["perceptual"]
    lines = ["What a person sees (protected vs original):",
             f"  PSNR {_fmt(p.get('psnr'), 2)} dB   SSIM {_fmt(p.get('ssim'), 4)}   "
             f"largest change {_fmt(p.get('linf'), 0)}/255   "
             f"change on flat areas {_fmt(p.get('flat_change'), 2)}/255 "
             f"({_fmt(p.get('flat_fraction', 0) * 100, 0)}% of the image is flat)"
             + (f"   LPIPS {_fmt(p['lpips'], 4)}" if "lpips" in p else "   LPIPS n/a"),
             "",
             "What the models see (shift: latent change relative to the latents; noise x: times the change "
             "random noise of the same size causes, 1 = no better than noise; ampl x: change in the model's "
             "reconstruction per unit of visible change; copy dB: PSNR of the model's copy of the protected "
             "image against its copy of the original, lower = stronger; +noise dB: how much lower than for "
             "random noise of the same visibility):"]
    models = rep["models"]
    views = ["clean"] + list(rep.get("transforms", {}))

    def has_copy(figs: dict) -> bool:
        return "copy_psnr" in figs

    header = f"  {'view':<14}" + "".join(
        f"{name + ' shift':>16}{'noise x':>9}" + (f"{'ampl x':>9}" if "amplification" in figs else "")
        + (f"{'copy dB':>9}{'+noise dB':>10}" if has_copy(figs) else "")
        for name, figs in models.items())
    lines.append(header)
    for view in views:
        pre = "" if view == "clean" else f"after.{view}."
        row = f"  {view:<14}"
        for figs in models.values():
            row += f"{_fmt(figs.get(pre + 'latent_shift'), 4):>16}{_fmt(figs.get(pre + 'noise_ratio')):>9}"
            if "amplification" in figs:
                row += f"{_fmt(figs.get(pre + 'amplification')):>9}"
            if has_copy(figs):
                row += f"{_fmt(figs.get(pre + 'copy_psnr')):>9}{_fmt(figs.get(pre + 'copy_over_noise')):>10}"
        lines.append(row)
    for name, s in rep.get("summary", {}).items():
        lines.append(f"  {name}: {s['verdict']} "
                     f"(weakest: {s['weakest_view']}, noise x{s['weakest_noise_ratio']:.2f})")
    lines.append(f"  (model figures on a view of at most {rep.get('eval_side')} px, train512 on its whole "
                 f"512 px crop; {rep.get('seconds', 0):.0f} s)")
    head = headline_lines(rep)
    if head:
        lines += ["", *head]
    md = rep.get("metadata")
    if md is not None:
        lines.append("")
        if md.get("do_not_train"):
            lines.append("'Do not train' metadata: present")
            if md.get("data_mining"):
                lines.append(f"  IPTC data mining: {md['data_mining_label']} ({md['data_mining']})")
            if md.get("tdm_reservation") is not None:
                lines.append(f"  TDMRep reservation: {md['tdm_reservation']}")
            if md.get("other_constraints"):
                lines.append(f"  other constraints: {md['other_constraints']}")
        else:
            lines.append("'Do not train' metadata: none found in the protected file"
                         + (f" ({md['problem']})" if md.get("problem") else ""))
    return "\n".join(lines)
